"""One place for the checks of tensors against an architecture.

:func:`check_layers` checks a file's masks against its ``layers`` table (used by ``Ticket.load``
and the packed conversion path); :func:`check_tensors` checks masks and weights against the
architecture (used by the ``Ticket`` constructor and the packed conversion path), so a ticket
in memory, a loaded file and a file converted without unpacking pass the same checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ticketfmt.errors import MaskError, TicketFormatError
from ticketfmt.format.raw import RawTensor
from ticketfmt.format.spec import Header
from ticketfmt.format.encodings import get_encoding
from ticketfmt.zoo import ArchSpec, format_version_for, prunable_names, state_dict_shapes
from ticketfmt.zoo.claims import check_claim, check_header  # the header's checks (no numpy: `ticket info`)

if TYPE_CHECKING:
    import numpy as np
    import torch

# numpy is imported where a check runs on numpy arrays or tensors, not here: the packed `ticket convert` path checks
# RawTensor bytes and never imports it.

__all__ = ["check_layers", "check_header", "check_claim", "check_pruned_values", "check_tensors", "all_finite",
           "empty_layers", "refuse_empty_layers"]


def check_layers(path: str, header: Header, tensors: dict[str, torch.Tensor], spec: ArchSpec) -> None:
    """Check every mask against the architecture and the ``layers`` table, without unpacking.

    The ``layers`` table (the masked tensors) must be exactly the architecture's prunable
    weights under the rule of the file's format version, both ways (``docs/SPEC.md``, "Prunable
    weights"); shapes must be the architecture's, packed padding bits zero, and each mask's
    popcount (the encoding's count) equal to its recorded ``kept``, and (an encoding that stores
    full tensors) every value at a pruned position +0.0. :func:`check_header` runs first, so
    nothing is laid out for an architecture the file cannot hold.
    """
    check_header(path, header, spec)
    codec = get_encoding(header.encoding)
    for name, layer in header.layers.items():
        raw = tensors[f"mask/{name}"]
        try:
            kept = codec.count_kept(raw, layer.shape)  # the encoding's own checks (packed: padding bits are zero)
        except ValueError as e:
            raise TicketFormatError(f"mask/{name}: {e}", path=path, tensor=f"mask/{name}",
                                    fix="the file is corrupted; download or copy it again") from None
        if kept != layer.kept:
            raise TicketFormatError(f"mask/{name} keeps {kept} weights but the metadata says {layer.kept}", path=path,
                                    tensor=f"mask/{name}", fix="the file is corrupted; download or copy it again")
    if not codec.zeroes_pruned:
        check_pruned_values(path, header, tensors)


_INT_OF_SIZE = {1: "int8", 2: "int16", 4: "int32", 8: "int64"}


def _bits(values: torch.Tensor | np.ndarray) -> np.ndarray:
    """The values' bit patterns as integers of the same size (so -0.0 and NaN payloads are seen)."""
    import numpy as np
    if isinstance(values, np.ndarray):
        return values.view(np.dtype(_INT_OF_SIZE[values.dtype.itemsize]))
    import torch
    return values.view(getattr(torch, _INT_OF_SIZE[values.element_size()])).numpy()


def check_pruned_values(path: str, header: Header, tensors: Mapping[str, torch.Tensor]) -> None:
    """Every stored value at a pruned position is +0.0, bit for bit (``docs/SPEC.md``: writers store
    ``θ ⊙ m``; a reader refuses anything else rather than silently zeroing it)."""
    import numpy as np
    codec = get_encoding(header.encoding)
    for name, layer in header.layers.items():
        kept = np.asarray(codec.decode_mask(tensors[f"mask/{name}"], layer.shape), dtype=bool).reshape(-1)
        for section in ("init", "trained"):
            values = tensors.get(f"{section}/{name}")
            if values is None or layer.kept == layer.numel:
                continue
            if _nonzero_where_pruned(_bits(values).reshape(-1), kept):
                raise TicketFormatError(f"{section}/{name} holds a value other than +0.0 at a pruned position",
                                        path=path, tensor=f"{section}/{name}",
                                        fix="the file is corrupted (writers store zeros where the mask is 0)")


def _nonzero_where_pruned(bits: np.ndarray, kept: np.ndarray, step: int = 1 << 18) -> bool:
    """Whether any position with ``kept`` False holds a nonzero bit pattern (in cache-sized slices: ~10x a gather)."""
    import numpy as np
    for i in range(0, bits.size, step):
        if np.count_nonzero(np.greater(bits[i:i + step] != 0, kept[i:i + step])):
            return True
    return False


def all_finite(t: torch.Tensor | np.ndarray | RawTensor) -> bool:
    """Whether every value of ``t`` (a tensor, a numpy array, or the packed convert path's RawTensor) is finite.

    A finite sum proves it (NaN and inf propagate); only a non-finite sum (an overflow of large
    finite values, or a real NaN/inf) needs the exact test. numpy on a zero-copy view: single
    threaded, so the time does not depend on waking OpenMP threads for many small tensors.

    Example:
        >>> import torch
        >>> all_finite(torch.tensor([1.0, 3e38, 3e38])), all_finite(torch.tensor([1.0, float("nan")]))
        (True, False)
    """
    if isinstance(t, RawTensor):
        return t.all_finite()  # its exponent bytes, no numpy
    import numpy as np

    from ticketfmt.format.arrays import widen
    if isinstance(t, np.ndarray):
        a = widen(t)
    else:
        try:
            a = t.detach().numpy()
        except (TypeError, RuntimeError):  # a dtype numpy lacks (bfloat16), or not on the CPU
            import torch
            return bool(torch.isfinite(t.sum())) or bool(torch.isfinite(t).all())
    with np.errstate(over="ignore", invalid="ignore"):
        # A sum in the array's own dtype (SIMD, no conversion pass); one that overflows takes the exact test.
        return bool(np.isfinite(a.sum())) or bool(np.isfinite(a).all())


def check_tensors(spec: ArchSpec, masks: Mapping[str, tuple[int, ...]],
                  sections: Mapping[str, Mapping[str, torch.Tensor] | None], *, packed: bool = False) -> None:
    """Check masks and weights against the architecture; raises :class:`MaskError` on the first problem.

    ``masks`` maps each mask's name to its shape: exactly the prunable weights, each of the
    architecture's shape. Each section of ``sections`` (``init``, ``trained``; None = absent)
    holds exactly the state dict's keys, of the architecture's shapes (``packed``: the masked
    tensors hold only their surviving values, sized by the header, and are not shape-checked
    here), with finite floating-point values.

    Example:
        >>> from ticketfmt.zoo import get_arch
        >>> check_tensors(get_arch("cifar_resnet8"), {}, {})
        Traceback (most recent call last):
        ...
        ticketfmt.errors.MaskError: 10 prunable weight(s) of cifar_resnet8 have no mask, first 'conv1.weight'; ...
    """
    shapes = state_dict_shapes(spec)
    # The rule of the format version these masks follow (format 1.0 tickets of ImageNet VGGs keep their classifier
    # dense); masks that follow no version are reported against the current rule.
    prunable = prunable_names(spec, version=format_version_for(spec, masks))
    arch = spec.id
    missing = [n for n in prunable if n not in masks]
    if missing:
        raise MaskError(f"{len(missing)} prunable weight(s) of {arch} have no mask, first {missing[0]!r}",
                        tensor=missing[0], fix="give a mask for every Conv2d/Linear weight the architecture prunes")
    extra = [n for n in masks if n not in prunable]
    if extra:
        raise MaskError(f"mask {extra[0]!r} is not a prunable weight of {arch}", tensor=extra[0],
                        fix="check the architecture id or drop the extra masks")
    for name, shape in masks.items():
        if tuple(shape) != shapes[name]:
            raise MaskError(f"mask {name!r} has shape {list(shape)} but {arch} expects {list(shapes[name])}",
                            tensor=name, fix="check the architecture id and num_classes")
    for section, weights in sections.items():
        if weights is not None:
            _check_section(spec, shapes, section, weights, set(masks) if packed else set())


def _check_section(spec: ArchSpec, shapes: Mapping[str, tuple[int, ...]], section: str,
                   weights: Mapping[str, torch.Tensor], unshaped: set[str]) -> None:
    arch = spec.id
    absent = [k for k in shapes if k not in weights]
    if absent:
        raise MaskError(f"{section} weights lack {len(absent)} key(s) of {arch}, first {absent[0]!r}",
                        tensor=absent[0], fix="store the whole state dict (BatchNorm buffers included)")
    unknown = [k for k in weights if k not in shapes]
    if unknown:
        raise MaskError(f"{section} key {unknown[0]!r} is not in {arch}'s state dict", tensor=unknown[0],
                        fix="check the architecture id")
    for k, v in weights.items():
        if k not in unshaped and tuple(v.shape) != shapes[k]:
            raise MaskError(f"{section} tensor {k!r} has shape {list(v.shape)} but {arch} expects "
                            f"{list(shapes[k])}", tensor=k, fix="check the architecture id and num_classes")
        if _is_float(v) and not all_finite(v):
            raise MaskError(f"{section} tensor {k!r} holds NaN or infinite values", tensor=k,
                            fix="start from finite weights")


def _is_float(v: torch.Tensor | np.ndarray | RawTensor) -> bool:
    if isinstance(v, RawTensor):
        return v.is_float
    import numpy as np

    from ticketfmt.format.arrays import BF16
    if isinstance(v, np.ndarray):
        return v.dtype.kind == "f" or v.dtype == BF16
    return v.is_floating_point()


def empty_layers(density: Mapping[str, tuple[int, int]]) -> list[str]:
    """The layers whose mask keeps no weight at all, in order (``density``: ``name -> (kept, total)``).

    A fully pruned layer cuts the network: nothing flows through it, and a fully pruned
    classifier makes the network output a constant (its bias) whatever the input.

    Example:
        >>> empty_layers({"conv1.weight": (3, 27), "fc.weight": (0, 640)})
        ['fc.weight']
    """
    return [name for name, (kept, total) in density.items() if total and not kept]


def refuse_empty_layers(density: Mapping[str, tuple[int, int]], what: str, *, fix: str) -> None:
    """Raise a one-line :class:`MaskError` naming the fully pruned layers of ``density``, if there are any.

    ``what`` says what would be written or published (for example ``"pruning to 80.00%"``);
    ``fix`` the remedies the caller offers (keep the layer dense, a minimum density, or an
    explicit override).

    Example:
        >>> refuse_empty_layers({"fc.weight": (0, 640)}, "this ticket", fix="keep fc dense")
        Traceback (most recent call last):
        ...
        ticketfmt.errors.MaskError: this ticket prunes every weight of layer 'fc.weight' (640 weights): the layer is cut from the network (a fully pruned classifier outputs a constant); keep fc dense
    """
    empty = empty_layers(density)
    if not empty:
        return
    first = empty[0]
    others = f" and {len(empty) - 1} more layer(s) ({', '.join(repr(n) for n in empty[1:4])}" \
             f"{', ...' if len(empty) > 4 else ''})" if len(empty) > 1 else ""
    raise MaskError(f"{what} prunes every weight of layer {first!r} ({density[first][1]:,} weights){others}: the "
                    "layer is cut from the network (a fully pruned classifier outputs a constant)", tensor=first,
                    fix=fix)
