"""See :mod:`ticketfmt.train.core`."""

from ticketfmt.train.core import *  # noqa: F401,F403
from ticketfmt.train.core import __all__  # noqa: F401
