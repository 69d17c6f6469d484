"""The model zoo: architectures as data (:class:`ArchSpec`), one family per module, one registry."""

from ticketfmt.zoo.base import *  # noqa: F401,F403
from ticketfmt.zoo.base import __all__  # noqa: F401
