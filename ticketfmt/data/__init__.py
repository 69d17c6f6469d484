"""See :mod:`ticketfmt.data.core`."""

from ticketfmt.data.core import *  # noqa: F401,F403
from ticketfmt.data.core import __all__  # noqa: F401
