"""File-to-file conversion (what `ticket convert` runs): :func:`convert_file`.

A converted unit holds exactly the mask and the values of its source unit, so in the packed
encoding (mask bits + surviving values) every target tensor *is* a source tensor of the
file: conversion is a re-indexing of the payload. :class:`PackedSource` reads a packed file
once, as byte views of one buffer (:func:`ticketfmt.format.raw.read_raw`), and runs the
checks of ``Ticket.load`` on the packed data (:mod:`ticketfmt.checks`: header, payload
checksum, architecture, layer shapes, padding bits, kept counts, finite values);
:func:`write_converted` then runs the one walk of :func:`~ticketfmt.converters.apply.walk_plan`
over the packed arrays, touching only the tensors that change (replicated copies under
``permute_copies``, a re-initialized classifier), and writes the metadata of
:func:`~ticketfmt.metadata.file_metadata`. The file is byte-identical to
``apply_plan(Ticket.load(src), plan).save(out)`` (the tests check it), at a fraction of the
time and memory.

This path imports neither torch, timm nor numpy: shapes come from :mod:`ticketfmt.zoo.shapes`;
masks are bit strings and kept values byte runs (:class:`~ticketfmt.format.raw.RawTensor`), so
a replicated block is the same bytes written again, a kept count is ``int.bit_count`` and the
finite check looks at exponent bytes. Only ``permute_copies`` and a re-initialized classifier
import torch (and numpy), to draw the same random numbers as the Ticket path. Other encodings
take the Ticket path (torch).

Example:
    >>> from ticketfmt.converters import convert_file
    >>> convert_file("r50.ticket", "resnet101", "r101.ticket").sparsity  # doctest: +SKIP
    0.8913
    >>> src = SourceFile.open("r20.ticket")  # read once, convert to several targets  # doctest: +SKIP
    >>> [convert_file(src, t, f"{t}.ticket").path for t in ("cifar_resnet32", "cifar_resnet56")]  # doctest: +SKIP
    ['cifar_resnet32.ticket', 'cifar_resnet56.ticket']
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ticketfmt.checks import check_layers, check_tensors
from ticketfmt.errors import ConversionError, MaskError, TicketFormatError, UnknownArchError
from ticketfmt.format.raw import RawTensor, read_raw, write_payload
from ticketfmt.format.spec import ENCODINGS, Header, read_header
from ticketfmt.metadata import file_metadata
from ticketfmt.sparsity import SparsityFigures
from ticketfmt.zoo import ArchSpec, format_version_for, spec_from_json, state_dict_shapes

from ticketfmt.converters.apply import apply_plan, elastic_provenance, walk_plan
from ticketfmt.converters.base import Plan, plan_conversion

if TYPE_CHECKING:
    import numpy as np
    import torch

    from ticketfmt.ticket import Ticket

__all__ = ["PackedSource", "SourceFile", "ConvertedFile", "convert_file", "write_converted"]


@dataclass
class PackedSource(SparsityFigures):
    """A packed ticket file, validated, held as its packed tensors (byte views of the file; nothing unpacked)."""

    path: str
    header: Header
    tensors: dict[str, RawTensor]
    file_sha256: str
    spec: ArchSpec

    @classmethod
    def open(cls, path: str | os.PathLike[str], verify: bool = True, header: Header | None = None) -> PackedSource:
        """Read and check a packed ticket as ``Ticket.load`` would; raises ``TicketFormatError``.

        ``header``: its header, if read already (it is parsed again from the bytes read).

        Example:
            >>> PackedSource.open("r20.ticket").spec.id  # doctest: +SKIP
            'cifar_resnet20'
        """
        p = str(path)
        read = read_raw(p, verify=verify, header=header)
        header, tensors = read.header, read.tensors
        with read.integrity_first():  # the checksums compute meanwhile, as in Ticket.load
            if header.encoding != "packed":
                raise TicketFormatError(f"{header.encoding} ticket, not packed", path=p,
                                        fix="load it with Ticket.load and use ticketfmt.converters.convert")
            try:
                spec = spec_from_json(header.arch)
            except UnknownArchError as e:
                raise TicketFormatError(f"arch {header.arch_id!r}: {e.message}", path=p, fix=e.fix) from None
            check_layers(p, header, tensors, spec)
            sections = {s: {k.split("/", 1)[1]: t for k, t in tensors.items() if k.startswith(s + "/")}
                        for s in ("init", "trained")}
            try:
                check_tensors(spec, {n: layer.shape for n, layer in header.layers.items()},
                              {"init": sections["init"], "trained": sections["trained"] or None}, packed=True)
            except MaskError as e:  # as Ticket.load reports it
                raise TicketFormatError(e.message, path=p, tensor=e.tensor, fix=e.fix) from None
        return cls(p, header, tensors, read.finish(), spec)

    @property
    def has_trained(self) -> bool:
        return any(k.startswith("trained/") for k in self.tensors)

    def layer_density(self) -> dict[str, tuple[int, int]]:
        return {n: (l.kept, l.numel) for n, l in self.header.layers.items()}


class _PackedTensors:
    """A :class:`~ticketfmt.converters.apply.TensorSource` over a packed file: mask bits and surviving values."""

    def __init__(self, src: PackedSource) -> None:
        self.src = src
        self.format_version = format_version_for(src.spec, src.header.layers)

    def masked(self, key: str, shape: tuple[int, ...]) -> tuple[RawTensor, RawTensor, int]:
        # A replicated block's copies are these same bytes, written once per target key.
        return self.src.tensors[f"mask/{key}"], self.src.tensors[f"init/{key}"], self.src.header.layers[key].kept

    def unmasked(self, key: str, shape: tuple[int, ...]) -> RawTensor:
        return self.src.tensors[f"init/{key}"].reshape(shape)

    def permuted(self, mask: RawTensor, values: RawTensor, shape: tuple[int, ...],
                 perm: torch.Tensor) -> tuple[RawTensor, RawTensor]:
        # Only a shuffled copy is unpacked (numpy: torch is loaded already to draw the permutation); its values
        # move with their mask positions.
        import numpy as np

        from ticketfmt.format.arrays import NUMPY_DTYPES, packbits, unpackbits
        m = unpackbits(np.frombuffer(mask.data, dtype=np.uint8), (math.prod(shape),))
        kept = np.frombuffer(values.data, dtype=NUMPY_DTYPES[values.dtype])
        full = np.zeros(m.shape, dtype=kept.dtype)
        full[m] = kept
        order = perm.numpy()
        m, full = m[order], full[order]
        return _raw(packbits(m)), _raw(full[m])

    def dense(self, values: RawTensor) -> tuple[RawTensor, RawTensor]:
        n = math.prod(values.shape)
        bits = b"\xff" * (n // 8) + (bytes([(0xFF00 >> (n % 8)) & 0xFF]) if n % 8 else b"")  # packbits(ones(n))
        return RawTensor.of_bytes("U8", (len(bits),), bits), values.reshape((n,))

    def dtype(self, key: str) -> str | None:
        t = self.src.tensors.get(f"init/{key}")
        return t.dtype if t is not None else None

    def adopt(self, tensor: torch.Tensor) -> RawTensor:
        from ticketfmt.format.tensors import tensor_to_array
        return _raw(tensor_to_array(tensor))


def _raw(a: np.ndarray) -> RawTensor:
    """A numpy array's bytes as a :class:`RawTensor` (the freshly drawn or shuffled tensors)."""
    from ticketfmt.format.arrays import array_bytes, dtype_name
    return RawTensor(dtype_name(a.dtype), tuple(a.shape), array_bytes(a))


@dataclass(frozen=True)
class ConvertedFile(SparsityFigures):
    """What a conversion wrote: enough for the command's table and JSON, whichever path wrote it."""

    path: str
    spec: ArchSpec
    provenance: dict[str, Any] = field(repr=False)
    density: dict[str, tuple[int, int]] = field(repr=False)
    size: int
    encoding: str = "packed"

    @property
    def arch(self) -> str:
        return self.spec.id

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    def layer_density(self) -> dict[str, tuple[int, int]]:
        return dict(self.density)


def write_converted(src: PackedSource, plan: Plan, out: str | os.PathLike[str], permute_copies: int | None = None,
                    classifier_seed: int = 0) -> ConvertedFile:
    """Write the conversion of ``src`` by ``plan`` to ``out`` (packed), reusing the source's packed tensors.

    Example:
        >>> src = PackedSource.open("r50.ticket")  # doctest: +SKIP
        >>> write_converted(src, plan_conversion(src.spec, "resnet152"), "r152.ticket").size  # doctest: +SKIP
        33554944
    """
    if src.spec != plan.source:
        raise ConversionError(f"the plan converts {plan.source.id} but {src.path} holds {src.spec.id}",
                              fix="plan for this ticket")
    walked = walk_plan(plan, _PackedTensors(src), permute_copies, classifier_seed)
    provenance = elastic_provenance(
        plan, sha256=src.file_sha256, sha256_of="file", sparsity=src.sparsity, path=src.path,
        had_trained=src.has_trained, source_provenance=src.header.provenance, permute_copies=permute_copies,
        copies_permuted=walked.copies_permuted, classifier_seed=classifier_seed)
    t_shapes = state_dict_shapes(plan.target)
    layers = {k: (t_shapes[k], walked.kept[k]) for k in walked.masks}
    # The same metadata builder and tensor order as Ticket.save, so both paths write the same bytes.
    tensors = [(f"mask/{k}", m) for k, m in walked.masks.items()]
    tensors += [(f"init/{k}", v) for k, v in walked.values.items()]
    size = write_payload(out, [(k, t.dtype, t.shape, t.data) for k, t in tensors],
                         file_metadata(plan.target, provenance, [], layers, "packed"))
    density = {k: (kept, math.prod(shape)) for k, (shape, kept) in layers.items()}
    return ConvertedFile(str(out), plan.target, provenance, density, size, "packed")


@dataclass(frozen=True)
class SourceFile(SparsityFigures):
    """A ticket file opened once for conversion (to one target or many).

    A packed file converted to the packed encoding is held as its packed tensors
    (:class:`PackedSource`, the fast path); any other combination as a loaded
    :class:`~ticketfmt.ticket.Ticket`. Both give the same files.
    """

    path: str
    spec: ArchSpec
    encoding: str
    packed: PackedSource | None = field(default=None, repr=False)
    ticket: Ticket | None = field(default=None, repr=False)

    @classmethod
    def open(cls, path: str | os.PathLike[str], verify: bool = True, encoding: str = "packed",
             header: Header | None = None) -> SourceFile:
        """Read and check ``path`` for writing targets in ``encoding`` (``packed`` or ``dense``).

        ``header``: the file's header if the caller has read it already (``ticket convert`` plans
        from it), so it is not read again first; the bytes read are checked all the same.

        Example:
            >>> SourceFile.open("r20.ticket").spec.id  # doctest: +SKIP
            'cifar_resnet20'
        """
        if encoding not in ENCODINGS:
            raise ConversionError(f"unknown encoding {encoding!r}", fix=f"use one of {', '.join(ENCODINGS)}")
        p = str(path)
        header = header if header is not None else read_header(p)
        if header.encoding == "packed" and encoding == "packed":
            src = PackedSource.open(p, verify=verify, header=header)
            return cls(p, src.spec, encoding, packed=src)
        from ticketfmt.ticket import Ticket  # torch: tensors are decoded or re-encoded
        ticket = Ticket.load(p, verify=verify)
        return cls(p, ticket.spec, encoding, ticket=ticket)

    def layer_density(self) -> dict[str, tuple[int, int]]:
        """``name -> (kept, total)`` of the source's masks."""
        return self.packed.layer_density() if self.packed is not None else self._ticket.layer_density()


    @property
    def has_trained(self) -> bool:
        """Whether the source holds trained weights (they belong to its architecture: conversion drops them)."""
        return self.packed.has_trained if self.packed is not None else self._ticket.trained is not None

    @property
    def _ticket(self) -> Ticket:
        assert self.ticket is not None  # open() sets exactly one of packed and ticket
        return self.ticket

    def write(self, plan: Plan, out: str | os.PathLike[str], permute_copies: int | None = None,
              classifier_seed: int = 0) -> ConvertedFile:
        """Write the conversion by ``plan`` to ``out`` in this source's output encoding."""
        if self.packed is not None:
            return write_converted(self.packed, plan, out, permute_copies, classifier_seed)
        converted = apply_plan(self._ticket, plan, permute_copies, classifier_seed)
        size = converted.save(out, encoding=self.encoding)
        return ConvertedFile(str(out), plan.target, converted.provenance, converted.layer_density(), size,
                             self.encoding)


def convert_file(src: str | os.PathLike[str] | SourceFile, target: str | ArchSpec | Plan,
                 out: str | os.PathLike[str], *, strategy: str | None = None, mapping: str | None = None,
                 num_classes: int | None = None, permute_copies: int | None = None, classifier_seed: int = 0,
                 encoding: str = "packed", verify: bool = True) -> ConvertedFile:
    """Convert the ticket file ``src`` to ``target`` and write it to ``out``; what ``ticket convert`` runs.

    ``src`` is a path or a :class:`SourceFile` (open it once to convert to several targets);
    ``target`` an architecture id, an ``ArchSpec``, or a :class:`Plan` made beforehand (then
    without ``strategy``, ``mapping``, ``num_classes``). The arguments are those of
    :func:`ticketfmt.converters.convert`; ``encoding`` and ``verify`` apply when ``src`` is a path.
    A packed source written packed never unpacks its tensors. Nothing is written on an error.

    Example:
        >>> convert_file("r20.ticket", "cifar_resnet56", "r56.ticket", strategy="append").arch  # doctest: +SKIP
        'cifar_resnet56'
    """
    source = src if isinstance(src, SourceFile) else SourceFile.open(src, verify=verify, encoding=encoding)
    if isinstance(target, Plan):
        if strategy is not None or mapping is not None or num_classes is not None:
            raise ConversionError("a Plan already says how to convert",
                                  fix="pass strategy, mapping and num_classes to plan_conversion instead")
        plan = target
    else:
        plan = plan_conversion(source.spec, target, strategy=strategy, mapping=mapping, num_classes=num_classes)
    return source.write(plan, out, permute_copies=permute_copies, classifier_seed=classifier_seed)
