"""Error classes of ticketfmt.

Each error also inherits the builtin it resembles (as huggingface_hub's errors do), so
``except ValueError`` keeps working for callers that do not know ticketfmt, and carries
the fields a program needs (the file, the tensor, the fix). ``str(error)`` is always a
single line: what is wrong, where, and how to fix it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "TicketError",
    "TicketFormatError",
    "TicketVersionError",
    "TicketIntegrityError",
    "UnknownArchError",
    "MaskError",
    "ConversionError",
    "DataError",
    "OutputExistsError",
    "OutputNotWritableError",
    "HubError",
    "HubAuthError",
    "HubNotFoundError",
    "HubOfflineError",
    "NotATicketRepoError",
    "UnverifiedTicketError",
]


def _one_line(text: str) -> str:
    # One line, and no terminal control characters (ESC, BEL: a hostile file name or server message) left raw.
    line = " ".join(str(text).split())
    return line if line.isprintable() else "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in line)


class TicketError(Exception):
    """Base class of every error ticketfmt raises on purpose.

    Example:
        >>> try:
        ...     raise TicketError("bad thing", fix="do the other thing")
        ... except TicketError as e:
        ...     str(e)
        'bad thing; do the other thing'
    """

    def __init__(self, message: str, *, fix: str | None = None, path: str | Path | None = None) -> None:
        self.message = _one_line(message)
        self.fix = _one_line(fix) if fix else None
        self.path = str(path) if path is not None else None
        text = self.message
        if self.path and self.path not in text:
            text = f"{self.path}: {text}"
        if self.fix:
            text = f"{text}; {self.fix}"
        super().__init__(text)


class TicketFormatError(TicketError, ValueError):
    """A file is not a valid ticket (bad header, offsets, dtypes, shapes, metadata)."""

    def __init__(self, message: str, *, fix: str | None = None, path: str | Path | None = None,
                 tensor: str | None = None) -> None:
        self.tensor = tensor
        super().__init__(message, fix=fix, path=path)


class TicketVersionError(TicketFormatError):
    """The file was written by a newer major version of the format."""


class TicketIntegrityError(TicketFormatError):
    """The tensor payload does not match the checksum recorded in the header."""


class UnknownArchError(TicketError, KeyError):
    """An architecture id is not in the zoo, or its depth is impossible."""

    def __str__(self) -> str:  # KeyError would quote the message
        return Exception.__str__(self)


class MaskError(TicketError, ValueError):
    """Masks or weights do not fit the architecture (missing, extra, wrong shape, not binary)."""

    def __init__(self, message: str, *, fix: str | None = None, path: str | Path | None = None,
                 tensor: str | None = None) -> None:
        self.tensor = tensor
        super().__init__(message, fix=fix, path=path)


class ConversionError(TicketError, ValueError):
    """An elastic conversion is impossible or its mapping is invalid."""


class DataError(TicketError, ValueError):
    """A dataset is unknown, missing or unreadable."""


class OutputExistsError(TicketError, FileExistsError):
    """The output file exists and overwriting was not asked for."""


class OutputNotWritableError(TicketError, PermissionError):
    """The output's folder cannot be written (read-only, no permission): the message names the output."""


class HubError(TicketError, OSError):
    """A Hub operation failed (authentication, missing repo or file, offline, not a ticket)."""


class _HubRepoError(HubError):
    """A Hub error about one repo (and maybe one file and revision): ``repo_id``, ``filename``, ``revision``."""

    def __init__(self, message: str, *, fix: str | None = None, path: str | Path | None = None,
                 repo_id: str | None = None, filename: str | None = None, revision: str | None = None) -> None:
        self.repo_id, self.filename, self.revision = repo_id, filename, revision
        super().__init__(message, fix=fix, path=path)

    def __str__(self) -> str:  # OSError would format errno/strerror because `filename` is set
        return Exception.__str__(self)


class HubAuthError(_HubRepoError, PermissionError):
    """No token, a token the Hub rejects, or a token without the rights the operation needs."""


class HubNotFoundError(_HubRepoError, FileNotFoundError):
    """The repo, the revision or the file does not exist (or is private to others)."""


class HubOfflineError(_HubRepoError, ConnectionError):
    """The Hub cannot be reached (``HF_HUB_OFFLINE=1`` or no network) and the cache lacks the files."""


class NotATicketRepoError(_HubRepoError, ValueError):
    """The repo (or folder) holds no ticket: no ``ticket.safetensors``, only pickles, or not a ticket file."""


class UnverifiedTicketError(TicketError, ValueError):
    """A ticket without a recorded evaluation result was about to be published."""
