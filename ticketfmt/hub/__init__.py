"""Hub integration: push, pull, card text (:mod:`.core`), one-commit publishing (:mod:`.publish`), the repo
folder and Hub errors (:mod:`.repo`), and :class:`~ticketfmt.ticket.Ticket`'s hooks (:mod:`.hooks`).

Exports load lazily: the ticket's hooks import :mod:`ticketfmt.hub.hooks`, which must not pull in
:mod:`.core` (it imports the ticket class; that would be an import cycle).

Example:
    >>> from ticketfmt.hub import push, pull
    >>> push("r56.ticket", "user/cifar_resnet56-cifar10-ticket")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "push": "core", "pull": "core", "card_text": "core", "PullResult": "core", "REPO_FILES": "core",
    "PushResult": "publish", "CARD_POLICIES": "publish", "push_ticket": "publish",
    "hub_errors": "repo", "map_hub_error": "repo", "scrub": "repo", "TICKET_FILE": "repo", "CONFIG_FILE": "repo",
    "PLOT_FILE": "repo", "README_FILE": "repo",
}
__all__ = list(_EXPORTS)

if TYPE_CHECKING:
    from ticketfmt.hub.core import REPO_FILES, PullResult, card_text, pull, push
    from ticketfmt.hub.publish import CARD_POLICIES, PushResult, push_ticket
    from ticketfmt.hub.repo import (CONFIG_FILE, PLOT_FILE, README_FILE, TICKET_FILE, hub_errors, map_hub_error,
                                    scrub)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ticketfmt.hub' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"ticketfmt.hub.{module}"), name)
