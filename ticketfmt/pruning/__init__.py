"""Pruning: :mod:`.core` (``prune``, ``keep_top``), the leaf :mod:`.registry`, and the methods.

Importing this package registers every built-in method: ``magnitude`` and ``random``
(:mod:`.magnitude`), ``snip``, ``grasp`` and ``synflow`` (:mod:`.pai`). A new method is one
file that decorates its scorer with :func:`register_pruner`, plus one import line here.
The reinit baseline (:mod:`.reinit`: another ticket's mask on a fresh initialization) is not a
scorer: ``prune(ticket, method="reinit", like=T)`` and :func:`reinit` make it.

Example:
    >>> from ticketfmt.pruning import PRUNERS
    >>> sorted(PRUNERS)
    ['grasp', 'magnitude', 'random', 'snip', 'synflow']
"""

from ticketfmt.pruning import magnitude, pai  # noqa: F401  (register their methods)
from ticketfmt.pruning.core import collapse_fix, dense_layers, keep_top, layer_counts_like, prune
from ticketfmt.pruning.reinit import REINIT_SEED_OFFSET, reinit
from ticketfmt.pruning.registry import PRUNERS, Scorer, get_pruner, register_pruner, unregister_pruner

__all__ = ["prune", "keep_top", "layer_counts_like", "dense_layers", "collapse_fix", "PRUNERS", "Scorer",
           "register_pruner", "unregister_pruner", "get_pruner", "reinit", "REINIT_SEED_OFFSET"]
