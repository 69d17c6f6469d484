"""Atomic file writes (imports no torch): a reader never sees a half-written file, and no writer replaces a file
it was told to keep.

The file is written to a temporary file in the output's folder and then *published*: with
``force`` by ``os.replace`` (an existing file is replaced); without it by a hard link
(``os.link(tmp, out)``, which fails if ``out`` exists, a dangling symlink included), so of
two concurrent writers without ``--force`` exactly one wins and the other gets the
"exists, pass --force" error. A check-then-rename would let both succeed.

The ``ticket`` command marks each output it checked without ``--force``
(:func:`refuse_replacing`, from ``check_output``), so every writer below it (``Ticket.save``,
the plots, the exports) publishes that path without replacing, with no ``force`` argument
threaded through the library; :func:`output_scope` limits the marks to one command.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from ticketfmt.errors import OutputExistsError, OutputNotWritableError

__all__ = ["atomic_write", "refuse_replacing", "output_scope"]

_KEEP: ContextVar[frozenset[str]] = ContextVar("ticketfmt_keep_outputs", default=frozenset())
# link() errors that mean "this file system has no hard links" (not "the output exists").
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV, errno.EMLINK}
_READ_ONLY = {errno.EACCES, errno.EPERM, errno.EROFS}


def _key(path: str | os.PathLike[str]) -> str:
    return os.path.abspath(os.fspath(path))  # not resolve(): a symlink output is itself the output


def refuse_replacing(path: str | os.PathLike[str]) -> None:
    """Make :func:`atomic_write` (``force=None``) refuse to replace ``path`` in this context, if it exists by then.

    Example:
        >>> with output_scope():
        ...     refuse_replacing("out.ticket")  # a later save to out.ticket never replaces a file
    """
    _KEEP.set(_KEEP.get() | {_key(path)})


@contextmanager
def output_scope() -> Iterator[None]:
    """The outputs marked by :func:`refuse_replacing` inside are forgotten on leaving (one CLI command)."""
    token = _KEEP.set(frozenset())
    try:
        yield
    finally:
        _KEEP.reset(token)


def _not_writable(target: Path, e: OSError) -> OutputNotWritableError:
    why = "its file system is read-only" if e.errno == errno.EROFS else "no permission to create files there"
    return OutputNotWritableError(f"cannot write {target}: folder {target.parent} is read-only ({why})",
                                  fix="choose another -o in a folder you can write")


def _publish(tmp: str, target: Path, replace: bool) -> None:
    """Make the finished temporary file ``target``: replace it, or (no-clobber) link it and fail if it exists."""
    if replace:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise OutputExistsError(f"{target} already exists (written by another process meanwhile?)",
                                fix="pass --force to replace it, or choose another -o") from None
    except OSError as e:
        if e.errno not in _NO_LINKS:
            raise
        raise OutputExistsError(f"cannot write {target} without the risk of replacing a file: its file system "
                                f"has no hard links ({e.strerror})",
                                fix="pass --force (replaces the file if another writer made it meanwhile)") from None
    os.unlink(tmp)  # the output is the link now; the temporary name goes


def atomic_write(path: str | os.PathLike[str], chunks: Iterable[bytes | memoryview], *,
                 force: bool | None = None) -> None:
    """Write ``chunks`` to ``path`` through a temporary file in the same folder, then publish it.

    A reader never sees a half-written file, and a failure leaves the old file (if any) intact
    and no temporary file. ``force=True`` replaces an existing ``path``; ``force=False``
    refuses to (``OutputExistsError``, also when another writer creates it meanwhile: of
    concurrent writers exactly one wins); ``None``: refuse if ``path`` was marked by
    :func:`refuse_replacing`, else replace (the library's default: ``Ticket.save`` overwrites).
    A folder that cannot be written gives ``OutputNotWritableError`` naming ``path``.

    Example:
        >>> atomic_write("/tmp/atomic-doctest.bin", [b"abc"], force=True)
        >>> atomic_write("/tmp/atomic-doctest.bin", [b"xyz"], force=False)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ticketfmt.errors.OutputExistsError: /tmp/atomic-doctest.bin already exists ...
    """
    target = Path(path)
    replace = force if force is not None else _key(target) not in _KEEP.get()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as e:
        if e.errno in _READ_ONLY:
            raise _not_writable(target, e) from None
        raise OSError(e.errno, f"cannot write {target}: {e.strerror}", str(target)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        _publish(tmp, target, replace)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
