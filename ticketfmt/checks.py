"""One place for the checks of tensors against an architecture (used by ``Ticket.load`` and packed conversion)."""

from __future__ import annotations

import torch

from ticketfmt.errors import TicketFormatError
from ticketfmt.format.spec import Header
from ticketfmt.format.tensors import popcount
from ticketfmt.zoo import ArchSpec, state_dict_shapes

__all__ = ["check_layers"]


def check_layers(path: str, header: Header, tensors: dict[str, torch.Tensor], spec: ArchSpec) -> None:
    """Check every mask against the architecture and the ``layers`` table, without unpacking.

    Shapes must be the architecture's, packed padding bits zero, and each mask's popcount
    equal to its recorded ``kept``.
    """
    shapes = state_dict_shapes(spec)
    packed = header.encoding == "packed"
    for name, layer in header.layers.items():
        if name not in shapes:
            raise TicketFormatError(f"layer {name!r} is not in {spec.id}'s state dict", path=path, tensor=name,
                                    fix="the file is corrupted or was written for another architecture")
        if layer.shape != shapes[name]:
            raise TicketFormatError(f"layer {name!r} has shape {list(layer.shape)} but {spec.id} expects "
                                    f"{list(shapes[name])}", path=path, tensor=name, fix="the file is corrupted")
        raw = tensors[f"mask/{name}"]
        if packed and layer.numel % 8 and raw.numel() and int(raw[-1]) & ((1 << (8 - layer.numel % 8)) - 1):
            raise TicketFormatError(f"mask/{name}: padding bits are not zero", path=path, tensor=f"mask/{name}",
                                    fix="the file is corrupted; download or copy it again")
        kept = popcount(raw) if packed else int(raw.sum())
        if kept != layer.kept:
            raise TicketFormatError(f"mask/{name} keeps {kept} weights but the metadata says {layer.kept}", path=path,
                                    tensor=f"mask/{name}", fix="the file is corrupted; download or copy it again")
