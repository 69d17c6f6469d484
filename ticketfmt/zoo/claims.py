"""The checks of a ticket header against the architecture it names: no payload, no numpy, no torch.

:func:`check_header` is what ``ticket info`` verifies and what every load checks first
(:func:`ticketfmt.checks.check_layers`): :func:`check_claim` (the file can hold the network its
id names, checked before the network is laid out), then the ``layers`` table against the
prunable set of the file's format version, both ways, and the architecture's shapes
(``docs/SPEC.md``, rules R19 and R20). It lives in the zoo layer, beside the layouts it reads,
so the header-only path imports nothing heavy.

Example:
    >>> from ticketfmt.format.spec import read_header
    >>> from ticketfmt.zoo import get_arch
    >>> path = "tests/golden/cifar_resnet8-packed-v1.0.ticket"
    >>> check_header(path, read_header(path), get_arch("cifar_resnet8"))  # doctest: +SKIP
"""

from __future__ import annotations

from ticketfmt.errors import TicketFormatError
from ticketfmt.format.spec import Header
from ticketfmt.zoo.base import ArchSpec, prunable_names, state_dict_shapes

__all__ = ["check_header", "check_claim", "ARCH_DERIVED"]


def check_header(path: str, header: Header, spec: ArchSpec) -> None:
    """Every check of a header against its architecture (no payload): what ``ticket info`` verifies.

    :func:`check_claim` first (nothing is laid out for a network the file cannot hold), then
    the ``layers`` table is the prunable set of the file's format version, both ways, each of
    the architecture's shape. Linear in the header; the layout of a built-in family needs no torch.
    """
    check_claim(path, header, spec)
    shapes = state_dict_shapes(spec)
    _check_masked_set(path, header, spec)
    for name, layer in header.layers.items():
        if name not in shapes:
            raise TicketFormatError(f"layer {name!r} is not in {spec.id}'s state dict", path=path, tensor=name,
                                    fix="the file is corrupted or was written for another architecture")
        if layer.shape != shapes[name]:
            raise TicketFormatError(f"layer {name!r} has shape {list(layer.shape)} but {spec.id} expects "
                                    f"{list(shapes[name])}", path=path, tensor=name, fix="the file is corrupted")


ARCH_DERIVED = ("library", "family", "block", "stages", "num_classes", "input_size")
"""The ``arch`` fields derived from its id (and ``num_classes``): informative, but a file's must agree."""


def check_claim(path: str, header: Header, spec: ArchSpec) -> None:
    """The file can hold the network its ``arch`` names; checked before the architecture is laid out.

    Every unit (residual block, VGG conv) has at least one prunable weight, so a file that
    masks fewer weights than the id has units cannot be that network: refused at once, so the
    work of laying the network out stays proportional to the file. The ``arch`` fields derived
    from the id (``docs/SPEC.md``: the id is authoritative) must agree with it.

    Example:
        >>> from ticketfmt.format.spec import read_header
        >>> from ticketfmt.zoo import get_arch
        >>> check_claim("r8.ticket", read_header("tests/golden/cifar_resnet8-packed-v1.0.ticket"),
        ...             get_arch("cifar_resnet56"))  # doctest: +SKIP
        Traceback (most recent call last):
        ticketfmt.errors.TicketFormatError: r8.ticket: arch cifar_resnet56 has 27 units but the file masks 10 weights...
    """
    units = sum(spec.stages)
    if len(header.layers) < units:
        raise TicketFormatError(f"arch {spec.id} has {units:,} units, each with a prunable weight, but the file masks "
                                f"{len(header.layers):,} weights", path=path,
                                fix="the file is corrupted or its arch id is wrong")
    expected = spec.to_json()
    for key in ARCH_DERIVED:
        if key in header.arch and header.arch[key] != expected[key]:
            shown = repr(header.arch[key])
            raise TicketFormatError(f"metadata 'arch': {key} is {shown if len(shown) <= 40 else shown[:37] + '...'} "
                                    f"but the id {spec.id} means {expected[key]!r}", path=path,
                                    fix="the file is corrupted (the arch id is authoritative)")


def _check_masked_set(path: str, header: Header, spec: ArchSpec) -> None:
    """The file's masked tensors (its ``layers``) are the prunable weights of its format version, both ways."""
    rule = prunable_names(spec, version=header.version)
    missing = [n for n in rule if n not in header.layers]
    if missing:
        raise TicketFormatError(f"format {header.version} prunes {len(missing)} weight(s) of {spec.id} that the file "
                                f"does not mask, first {missing[0]!r}", path=path, tensor=missing[0],
                                fix="the file is corrupted or its format_version is wrong")
    extra = [n for n in header.layers if n not in rule]
    if extra:
        raise TicketFormatError(f"the file masks {extra[0]!r}, which format {header.version} leaves dense in "
                                f"{spec.id}", path=path, tensor=extra[0],
                                fix="the file is corrupted or its format_version is wrong")
