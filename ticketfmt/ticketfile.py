"""Lazy access to a ticket file, in the style of safetensors' ``safe_open``: :class:`TicketFile`.

``Ticket.load`` reads, checks and decodes everything; a :class:`TicketFile` (``Ticket.open``)
checks the header against the architecture (:func:`ticketfmt.checks.check_header`) and then
decodes only the tensors asked for, from a read-only memory map of the file. Each tensor is
checked as it is decoded, as ``Ticket.load`` checks it (a mask's survivors against ``layers``,
padding bits; values finite, +0.0 at pruned positions where the encoding stores them); with
``verify`` (the default) the payload's sha256 is checked once, at open, reading the file
without decoding it. Decoded tensors are copies: they outlive the file.

Example:
    >>> from ticketfmt import Ticket
    >>> with Ticket.open("resnet50.ticket") as f:  # doctest: +SKIP
    ...     mask = f.masks["layer3.0.conv1.weight"]  # decodes this mask only
    ...     f.spec.id, f.sparsity, mask.shape
    ('timm/resnet50', 0.9, torch.Size([256, 1024, 1, 1]))
"""

from __future__ import annotations

import hashlib
import mmap
import os
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ticketfmt.checks import all_finite, check_header, check_pruned_values
from ticketfmt.errors import TicketFormatError, TicketIntegrityError, UnknownArchError
from ticketfmt.format.arrays import NUMPY_DTYPES
from ticketfmt.format.encodings import get_encoding
from ticketfmt.format.spec import Header, TensorInfo, read_header
from ticketfmt.zoo import ArchSpec, spec_from_json

if TYPE_CHECKING:
    import torch

__all__ = ["TicketFile"]


class TicketFile:
    """A ticket file opened for lazy access: header-level checks at open, each tensor decoded when asked for.

    ``masks`` (BOOL masks), ``init`` and ``trained`` (full tensors, zeros at pruned positions)
    are read-only mappings keyed by state-dict name; ``trained`` is None when the file holds
    none. Use it as a context manager (or call :meth:`close`).

    Example:
        >>> with TicketFile("r20.ticket") as f:  # doctest: +SKIP
        ...     list(f.masks)[:2], f.init["fc.bias"].shape
        (['conv1.weight', 'layer1.0.conv1.weight'], torch.Size([10]))
    """

    def __init__(self, path: str | os.PathLike[str], verify: bool = True) -> None:
        self.path = str(path)
        self.header: Header = read_header(self.path)
        try:
            self.spec: ArchSpec = spec_from_json(self.header.arch)
        except UnknownArchError as e:
            raise TicketFormatError(f"arch {self.header.arch_id!r}: {e.message}", path=self.path, fix=e.fix) from None
        check_header(self.path, self.header, self.spec)
        with open(self.path, "rb") as f:
            self._map: mmap.mmap | None = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        if len(self._map) != self.header.file_size:
            self.close()
            raise TicketFormatError("file changed size while being opened", path=self.path, fix="open it again")
        if verify:
            self._verify()
        self._codec = get_encoding(self.header.encoding)
        self.masks: Mapping[str, torch.Tensor] = _Section(self, "mask")
        self.init: Mapping[str, torch.Tensor] = _Section(self, "init")
        self.trained: Mapping[str, torch.Tensor] | None = _Section(self, "trained") if self.header.section("trained") \
            else None

    def _verify(self) -> None:
        recorded = self.header.metadata.get("payload_sha256")
        if recorded is None:
            self.close()
            raise TicketIntegrityError("no payload_sha256 in the metadata", path=self.path,
                                       fix="open with verify=False (--no-verify) to read it anyway")
        assert self._map is not None
        with memoryview(self._map) as view:  # released before any close()
            digest = hashlib.sha256(view[self.header.data_offset:]).hexdigest()
        if digest != recorded:
            self.close()
            raise TicketIntegrityError("payload does not match its sha256: the file is corrupted", path=self.path,
                                       fix="download or copy it again (or open with verify=False)")

    @property
    def arch(self) -> str:
        """The architecture id, e.g. ``timm/resnet50``."""
        return self.spec.id

    @property
    def sparsity(self) -> float:
        """The overall sparsity recorded in the header."""
        return self.header.sparsity

    @property
    def provenance(self) -> dict[str, Any]:
        return self.header.provenance

    @property
    def results(self) -> list[dict[str, Any]]:
        return self.header.results

    def _array(self, name: str) -> np.ndarray:
        """A private copy of one tensor's bytes, as stored (decoded tensors must outlive the map)."""
        if self._map is None:
            raise ValueError(f"{self.path} is closed")
        info: TensorInfo = self.header.tensors[name]
        start = self.header.data_offset + info.start
        raw = np.frombuffer(self._map, np.uint8, info.end - info.start, start).copy()
        if info.dtype == "BOOL" and raw.size and int(raw.max()) > 1:
            raise TicketFormatError(f"tensor {name!r}: BOOL values other than 0 and 1", path=self.path, tensor=name,
                                    fix="the file is corrupted; download or copy it again")
        return raw.view(NUMPY_DTYPES[info.dtype]).reshape(info.shape)

    def _raw_mask(self, name: str) -> torch.Tensor:
        """``mask/<name>`` as stored, its survivors checked against ``layers`` (and the encoding's own rules)."""
        from ticketfmt.format.tensors import array_to_tensor
        layer = self.header.layers[name]
        raw = array_to_tensor(self._array(f"mask/{name}"))
        try:
            kept = self._codec.count_kept(raw, layer.shape)
        except ValueError as e:
            raise TicketFormatError(f"mask/{name}: {e}", path=self.path, tensor=f"mask/{name}",
                                    fix="the file is corrupted; download or copy it again") from None
        if kept != layer.kept:
            raise TicketFormatError(f"mask/{name} keeps {kept} weights but the metadata says {layer.kept}",
                                    path=self.path, tensor=f"mask/{name}",
                                    fix="the file is corrupted; download or copy it again")
        return raw

    def _mask(self, name: str) -> torch.Tensor:
        return self._codec.decode_mask(self._raw_mask(name), self.header.layers[name].shape)

    def _values(self, section: str, name: str) -> torch.Tensor:
        from ticketfmt.format.tensors import array_to_tensor
        raw = array_to_tensor(self._array(f"{section}/{name}"))
        if name in self.header.layers:
            stored = self._raw_mask(name)
            if not self._codec.zeroes_pruned:  # this layer only: the check Ticket.load runs on every layer
                one = replace(self.header, layers={name: self.header.layers[name]})
                check_pruned_values(self.path, one, {f"mask/{name}": stored, f"{section}/{name}": raw})
            raw = self._codec.decode_values(raw, self._codec.decode_mask(stored, self.header.layers[name].shape))
        if raw.is_floating_point() and not all_finite(raw):
            raise TicketFormatError(f"{section} tensor {name!r} holds NaN or infinite values", path=self.path,
                                    tensor=name, fix="start from finite weights")
        return raw

    def close(self) -> None:
        """Release the file (decoded tensors stay valid)."""
        if self._map is not None:
            self._map.close()
            self._map = None

    def __enter__(self) -> TicketFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TicketFile({self.path!r}, arch={self.arch!r}, encoding={self.header.encoding!r})"


class _Section(Mapping[str, "torch.Tensor"]):
    """One section of a :class:`TicketFile` (``mask``, ``init``, ``trained``), decoded per key on access."""

    def __init__(self, file: TicketFile, section: str) -> None:
        self.file, self.section = file, section
        self.names = list(file.header.section(section))

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self.names:
            raise KeyError(name)
        return self.file._mask(name) if self.section == "mask" else self.file._values(self.section, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self.names
