"""See :mod:`ticketfmt.interop.core`."""

from ticketfmt.interop.core import *  # noqa: F401,F403
from ticketfmt.interop.core import __all__  # noqa: F401
