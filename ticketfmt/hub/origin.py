"""Where a ticket came from on the Hub: ``provenance["hub"]``, recorded by ``pull`` and ``from_pretrained``.

The record (``repo_id``, ``revision``: the commit read, ``sha256``: the published file's) travels
with the ticket: a conversion keeps the source's provenance (``source_provenance``), pruning and
verification keep the ticket's own, so the card of anything made from a Hub ticket names it as
``base_model``. ``ticket pull`` writes it into the file by rewriting only the header's
``provenance`` string: the tensor payload (and its ``payload_sha256``) stays byte for byte the
published one; ``verbatim`` pulls skip it.

Example:
    >>> record_origin({"method": "imp"}, "user/r20-ticket", "abc123", "ff" * 32)["hub"]["repo_id"]
    'user/r20-ticket'
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["ORIGIN_KEY", "record_origin", "without_origin", "origin_of", "write_with_provenance"]

ORIGIN_KEY = "hub"


def record_origin(provenance: Mapping[str, Any], repo_id: str, revision: str | None,
                  sha256: str | None) -> dict[str, Any]:
    """``provenance`` with ``hub = {repo_id, revision, sha256}`` (a former record is replaced: the latest download)."""
    origin = {"repo_id": repo_id, "revision": revision, "sha256": sha256}
    return {**provenance, ORIGIN_KEY: {k: v for k, v in origin.items() if v is not None}}


def without_origin(provenance: Mapping[str, Any]) -> dict[str, Any]:
    """``provenance`` without its Hub origin record."""
    return {k: v for k, v in provenance.items() if k != ORIGIN_KEY}


def origin_of(provenance: Mapping[str, Any]) -> str | None:
    """The repo id of the ticket's own Hub origin record, if any."""
    origin = provenance.get(ORIGIN_KEY)
    repo = origin.get("repo_id") if isinstance(origin, Mapping) else None
    return repo if isinstance(repo, str) else None


def write_with_provenance(src: str | os.PathLike[str], dst: str | os.PathLike[str],
                          provenance: Mapping[str, Any]) -> None:
    """Copy the ticket file ``src`` to ``dst`` (atomically) with its metadata's ``provenance`` replaced.

    Only the header changes; the payload is copied byte for byte, so its ``payload_sha256``
    still holds. ``src`` must be a ticket file already read and checked (``Ticket.load``).
    """
    from ticketfmt.format.atomic import atomic_write

    with open(src, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    meta = header["__metadata__"]
    # The format's own serialization of provenance (compact, sorted keys; ticketfmt.ticket.file_metadata).
    meta["provenance"] = json.dumps(dict(provenance), separators=(",", ":"), sort_keys=True)
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * ((-len(raw)) % 8)

    def chunks() -> Iterator[bytes]:
        yield struct.pack("<Q", len(raw)) + raw
        with open(src, "rb") as f:
            f.seek(8 + n)
            yield from iter(lambda: f.read(1 << 20), b"")

    atomic_write(dst, chunks())
