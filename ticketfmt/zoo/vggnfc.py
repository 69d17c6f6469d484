"""The CIFAR VGG with n fully connected layers (the Elastic LTH paper's Appendix C, Table 5).

The reference's ``cifar_vggnfc_D[_W[_N]]`` (VITA-Group/ElasticLTH ``models/cifar_vggnfc.py``):
VGG-D (11, 13, 16, 19) convs of widths W × (1, 2, 4, 8, 8) (W = 64 unless given), each conv
with its bias and BatchNorm, a max-pool between stages, a 2×2 average pool, then
``classifier`` = (N − 1) × [Linear(8W, 8W), ReLU] and the output layer ``fc`` (N = 1 unless
given). The module names are the reference's (``layers.{i}.conv``, ``classifier.{2j}``, ``fc``).

As the reference prunes it (``pruning_layers_to_ignore='fc.weight'``), every conv and
classifier Linear weight is prunable, the output layer ``fc`` is not. Six stages: the five
conv stages (never converted) and the hidden classifier layers, the stage that conversion
stretches or squeezes (the reference changes the classifier's depth only).

The reference reads W only from a four-part name: ``cifar_vggnfc_13_128_3`` builds a 64-wide
VGG there. Such a name is refused here rather than built with a width its name does not have.

Example:
    >>> from ticketfmt.zoo import get_arch, prunable_names
    >>> spec = get_arch("cifar_vggnfc_13_64_3")
    >>> spec.stages, spec.depth, prunable_names(spec)[-2:]
    ((2, 2, 2, 2, 2, 2), 13, ['classifier.0.weight', 'classifier.2.weight'])
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ticketfmt.errors import UnknownArchError
from ticketfmt.zoo.base import ArchSpec, Family
from ticketfmt.zoo.infer import library_of, out_features
from ticketfmt.zoo.registry import register_family
from ticketfmt.zoo.vgg import VGG_NAMED

if TYPE_CHECKING:
    from torch import nn

__all__ = ["CifarVGGNFCFamily", "vggnfc_parts", "WIDTH_FACTORS"]

WIDTH_FACTORS = (1, 2, 4, 8, 8)
"""Conv widths of each stage, in units of W."""
MAX_WIDTH = 1024


def vggnfc_parts(spec: ArchSpec) -> tuple[int, int, int]:
    """``(depth, width, num_fc)`` of a ``cifar_vggnfc`` spec (its block is ``vgg{D}-{W}``).

    Example:
        >>> from ticketfmt.zoo import get_arch
        >>> vggnfc_parts(get_arch("cifar_vggnfc_16"))
        (16, 64, 1)
    """
    depth, width = (int(x) for x in spec.block[len("vgg"):].split("-"))
    return depth, width, spec.stages[5] + 1


class CifarVGGNFCFamily(Family):
    """``cifar_vggnfc_D[_W[_N]]``: VGG-D of width W with N fully connected layers."""

    name = "cifar_vggnfc"
    libraries = ("builtin",)
    default_classes = 10
    input_size = (3, 32, 32)
    max_units = 32
    unit_word = "layers"

    def parse(self, name: str, library: str) -> ArchSpec | None:
        m = re.fullmatch(r"cifar_vggnfc_(\d+)(?:_(\d+))?(?:_(\d+))?", name)
        if not m:
            return None
        depth, width, num_fc = int(m.group(1)), int(m.group(2) or 64), int(m.group(3) or 1)
        if depth not in VGG_NAMED:
            raise UnknownArchError(f"unknown VGG depth {depth} in {name!r}", fix="use cifar_vggnfc_11, 13, 16 or 19")
        if m.group(3) and width != 64:
            raise UnknownArchError(f"{name!r}: the reference builds width 64 whatever W is when N is given (it reads "
                                   "W from four-part names only)",
                                   fix=f"use cifar_vggnfc_{depth}_64_{num_fc}, or cifar_vggnfc_{depth}_{width} "
                                       "for one FC layer")
        if not 1 <= width <= MAX_WIDTH or num_fc < 1:
            raise UnknownArchError(f"{name!r}: width {width} or FC layers {num_fc} out of range",
                                   fix=f"use a width in 1..{MAX_WIDTH} and at least one FC layer")
        return self.make(library, f"vgg{depth}-{width}", VGG_NAMED[depth] + (num_fc - 1,))

    def canonical_name(self, block: str, stages: tuple[int, ...]) -> str:
        depth, width = block[len("vgg"):].split("-")
        num_fc = stages[5] + 1
        return f"cifar_vggnfc_{depth}_{width}" if width != "64" else f"cifar_vggnfc_{depth}_64_{num_fc}"

    def named_ids(self) -> tuple[str, ...]:
        return tuple(f"cifar_vggnfc_13_64_{n}" for n in (2, 3, 5))

    def depth(self, spec: ArchSpec) -> int:
        return sum(spec.stages) + 1

    def conv_index(self, spec: ArchSpec, stage: int, index: int) -> int:
        """The ``layers`` index of a conv module (a max-pool sits between stages)."""
        return sum(spec.stages[:stage]) + stage + index

    def unit_prefixes(self, spec: ArchSpec, stage: int, index: int) -> tuple[str, ...]:
        if stage == 5:
            return (f"classifier.{2 * index}.",)
        return (f"layers.{self.conv_index(spec, stage, index)}.",)

    def stage_of(self, spec: ArchSpec, key: str) -> str:
        if key.startswith("classifier."):
            return "stage6"
        m = re.match(r"layers\.(\d{1,9})\.", key)
        if not m:
            return "head" if key.startswith("fc.") else "stem"
        i = int(m.group(1))
        for s in range(5):
            if i < self.conv_index(spec, s, spec.stages[s]):
                return f"stage{s + 1}"
        return "head"

    def is_prunable(self, spec: ArchSpec, module_name: str, module: nn.Module) -> bool:
        return super().is_prunable(spec, module_name, module) and module_name != "fc"

    def infer(self, model: nn.Module) -> ArchSpec | None:
        if library_of(model) != "builtin" or type(model).__name__ != "CifarVGGNFC":
            return None
        convs = [0]
        for layer in model.layers:  # type: ignore[union-attr]
            if hasattr(layer, "conv"):
                convs[-1] += 1
            else:  # a max-pool between stages
                convs.append(0)
        depth = next((d for d, s in VGG_NAMED.items() if s == tuple(convs)), None)
        if depth is None:
            return None
        width = model.layers[0].conv.out_channels  # type: ignore[index, union-attr]
        stages = tuple(convs) + (len(model.classifier) // 2,)  # type: ignore[arg-type]
        return self.make("builtin", f"vgg{depth}-{width}", stages, out_features(model.fc))  # type: ignore[arg-type]

    def build(self, spec: ArchSpec) -> nn.Module:
        from ticketfmt.models import CifarVGGNFC
        _, width, num_fc = vggnfc_parts(spec)
        return CifarVGGNFC(spec.stages[:5], width, num_fc, num_classes=spec.num_classes)

    def constructor(self, spec: ArchSpec) -> dict[str, Any]:
        _, width, num_fc = vggnfc_parts(spec)
        return {"class": "ticketfmt.models.CifarVGGNFC", "convs": list(spec.stages[:5]), "width": width,
                "num_fc": num_fc}


register_family(CifarVGGNFCFamily())
