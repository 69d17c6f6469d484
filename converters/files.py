"""File-to-file conversion of packed tickets without unpacking them (what `ticket convert` uses).

A converted unit holds exactly the mask and the values of its source unit, so in the
packed encoding (mask bits + surviving values) every target tensor *is* a source tensor
of the file: conversion is a re-indexing of the payload. :class:`PackedSource` reads a
packed file once and runs the checks of ``Ticket.load`` on the packed data (header,
payload checksum, architecture, layer shapes, padding bits, kept counts, finite values);
:func:`write_converted` then writes each target with the source's bytes, touching only the
tensors that change (replicated copies under ``permute_copies``, a re-initialized
classifier). The file is byte-identical to ``apply_plan(Ticket.load(src), plan).save(out)``
(the tests check it), at a fraction of the time and memory.

Example:
    >>> src = PackedSource.open("r50.ticket")  # doctest: +SKIP
    >>> result = write_converted(src, plan_conversion(src.spec, "resnet152"), "r152.ticket")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ticketfmt.errors import ConversionError, TicketFormatError, UnknownArchError
from ticketfmt.checks import check_layers
from ticketfmt.format.tensors import base_metadata, pack_bits, read_file, unpack_bits, write_tensors
from ticketfmt.format.spec import Header
from ticketfmt.sparsity import sparsity_of, stage_sparsity
from ticketfmt.zoo import ArchSpec, prunable_names, spec_from_json, state_dict_shapes

from ticketfmt.converters.base import Plan, elastic_provenance
from ticketfmt.converters.registry import get_converter

__all__ = ["PackedSource", "ConvertedFile", "write_converted"]


# The checks below use numpy on zero-copy views: single-threaded, so their time does not depend
# on waking OpenMP threads on a busy machine (the tensors here are small and many).
def _all_finite(t: torch.Tensor) -> bool:
    # A finite sum proves every value finite (NaN and inf propagate); only a non-finite sum
    # (an overflow of large finite values, or a real NaN/inf) needs the exact test.
    try:
        a = t.numpy()
    except TypeError:  # a dtype numpy lacks (bfloat16)
        return bool(torch.isfinite(t.sum())) or bool(torch.isfinite(t).all())
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(a.sum(dtype=np.float64))) or bool(np.isfinite(a).all())


@dataclass
class PackedSource:
    """A packed ticket file, validated, held as its packed tensors (nothing unpacked)."""

    path: str
    header: Header
    tensors: dict[str, torch.Tensor]
    file_sha256: str
    spec: ArchSpec

    @classmethod
    def open(cls, path: str | os.PathLike[str], verify: bool = True) -> PackedSource:
        """Read and check a packed ticket as ``Ticket.load`` would; raises ``TicketFormatError``."""
        p = str(path)
        header, tensors, file_sha = read_file(p, verify=verify)
        if header.encoding != "packed":
            raise TicketFormatError(f"{header.encoding} ticket, not packed", path=p,
                                    fix="load it with Ticket.load and use ticketfmt.converters.convert")
        try:
            spec = spec_from_json(header.arch)
        except UnknownArchError as e:
            raise TicketFormatError(f"arch {header.arch_id!r}: {e.message}", path=p, fix=e.fix) from None
        src = cls(p, header, tensors, file_sha, spec)
        src._check()
        return src

    def _check(self) -> None:
        p, spec, header = self.path, self.spec, self.header
        shapes = state_dict_shapes(spec)
        prunable = prunable_names(spec)
        check_layers(p, header, self.tensors, spec)
        missing = [n for n in prunable if n not in header.layers]
        extra = [n for n in header.layers if n not in prunable]
        if missing or extra:
            what = (f"{len(missing)} prunable weight(s) of {spec.id} have no mask, first {missing[0]!r}" if missing
                    else f"mask {extra[0]!r} is not a prunable weight of {spec.id}")
            raise TicketFormatError(what, path=p, tensor=(missing or extra)[0], fix="the file is corrupted")
        for section in ("init", "trained"):
            values = {k.split("/", 1)[1]: t for k, t in self.tensors.items() if k.startswith(section + "/")}
            if not values and section == "trained":
                continue
            absent = [k for k in shapes if k not in values]
            unknown = [k for k in values if k not in shapes]
            if absent or unknown:
                what = (f"{section} weights lack {len(absent)} key(s) of {spec.id}, first {absent[0]!r}" if absent
                        else f"{section} key {unknown[0]!r} is not in {spec.id}'s state dict")
                raise TicketFormatError(what, path=p, tensor=(absent or unknown)[0], fix="the file is corrupted")
            for k, t in values.items():
                if k not in header.layers and tuple(t.shape) != shapes[k]:
                    raise TicketFormatError(f"{section} tensor {k!r} has shape {list(t.shape)} but {spec.id} expects "
                                            f"{list(shapes[k])}", path=p, tensor=k, fix="the file is corrupted")
                if t.is_floating_point() and not _all_finite(t):
                    raise TicketFormatError(f"{section} tensor {k!r} holds NaN or infinite values", path=p, tensor=k,
                                            fix="start from finite weights")

    @property
    def has_trained(self) -> bool:
        return any(k.startswith("trained/") for k in self.tensors)

    def layer_density(self) -> dict[str, tuple[int, int]]:
        return {n: (l.kept, l.numel) for n, l in self.header.layers.items()}

    @property
    def sparsity(self) -> float:
        return sparsity_of(self.layer_density())

    def stage_sparsity(self) -> dict[str, float]:
        return stage_sparsity(self.spec, self.layer_density())


@dataclass
class ConvertedFile:
    """What :func:`write_converted` wrote: enough for the command's table and JSON."""

    path: str
    spec: ArchSpec
    provenance: dict[str, Any]
    density: dict[str, tuple[int, int]]
    size: int

    @property
    def arch(self) -> str:
        return self.spec.id

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    @property
    def sparsity(self) -> float:
        return sparsity_of(self.density)

    def stage_sparsity(self) -> dict[str, float]:
        return stage_sparsity(self.spec, self.density)


def write_converted(src: PackedSource, plan: Plan, out: str | os.PathLike[str], permute_copies: int | None = None,
                    classifier_seed: int = 0) -> ConvertedFile:
    """Write the conversion of ``src`` by ``plan`` to ``out`` (packed), reusing the source's packed tensors."""
    if src.spec != plan.source:
        raise ConversionError(f"the plan converts {plan.source.id} but {src.path} holds {src.spec.id}",
                              fix="plan for this ticket")
    t_shapes = state_dict_shapes(plan.target)
    t_prunable = prunable_names(plan.target)
    prunable = set(t_prunable)
    layers = src.header.layers
    gen = torch.Generator().manual_seed(permute_copies) if permute_copies is not None else None
    masks: dict[str, torch.Tensor] = {}
    values: dict[str, torch.Tensor] = {}
    kept: dict[str, int] = {}
    copies_permuted = 0
    for k, sk, copy in plan.key_map:
        if sk is None:
            continue
        shape = t_shapes[k]
        v = src.tensors[f"init/{sk}"]
        if k in prunable:
            bits = src.tensors[f"mask/{sk}"]
            kept[k] = layers[sk].kept
            if gen is not None and copy:
                m = unpack_bits(bits, layers[sk].shape).reshape(-1)
                dense = torch.zeros(m.shape, dtype=v.dtype)
                dense[m] = v
                perm = torch.randperm(m.numel(), generator=gen)
                m, dense = m[perm], dense[perm]
                bits, v = pack_bits(m), dense[m]
                copies_permuted += 1
            masks[k] = bits
            values[k] = v
        else:
            values[k] = v.reshape(shape) if tuple(v.shape) != shape else v
    if plan.reinit_classifier:
        conv = get_converter(plan.target.family)
        keys = conv.classifier_keys(plan.target)
        src_keys = [f"init/{k}" for k in conv.classifier_keys(plan.source) if f"init/{k}" in src.tensors]
        dtype = src.tensors[src_keys[0]].dtype if src_keys else torch.float32
        fresh = conv.init_classifier(plan.target, {k: t_shapes[k] for k in keys},
                                     torch.Generator().manual_seed(classifier_seed), dtype)
        for k, v in fresh.items():
            if k in prunable:
                masks[k] = pack_bits(torch.ones(t_shapes[k], dtype=torch.bool))
                kept[k] = v.numel()
                values[k] = v.reshape(-1)
            else:
                values[k] = v
    density = {k: (kept[k], _numel(t_shapes[k])) for k in t_prunable}
    provenance = elastic_provenance(
        plan, source_arch=src.spec.id, source_classes=src.spec.num_classes, sha256=src.file_sha256,
        sha256_of="file", sparsity=src.sparsity, path=src.path, had_trained=src.has_trained,
        source_provenance=src.header.provenance, permute_copies=permute_copies, copies_permuted=copies_permuted,
        classifier_seed=classifier_seed)
    # The same metadata and tensor order as Ticket.save, so both paths write the same bytes.
    meta = base_metadata("packed")
    meta.update({
        "arch": json.dumps(plan.target.to_json(), separators=(",", ":")),
        "provenance": json.dumps(provenance, separators=(",", ":"), sort_keys=True),
        "results": json.dumps([], separators=(",", ":")),
        "layers": json.dumps({k: {"shape": list(t_shapes[k]), "kept": density[k][0]} for k in t_prunable},
                             separators=(",", ":")),
        "sparsity": f"{sparsity_of(density):.6f}",
    })
    tensors = {f"mask/{k}": masks[k] for k in t_prunable}
    tensors.update({f"init/{k}": values[k] for k in t_shapes})
    size = write_tensors(out, tensors, meta)
    return ConvertedFile(str(out), plan.target, provenance, density, size)


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
