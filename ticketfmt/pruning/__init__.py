"""Pruning: the generic machinery (:mod:`.core`) and the methods, registered when this package is imported."""

from ticketfmt.pruning import pai  # noqa: F401  (registers snip, grasp, synflow)
from ticketfmt.pruning.core import *  # noqa: F401,F403
from ticketfmt.pruning.core import __all__  # noqa: F401
