"""Elastic conversion of the LeNet MLPs (``mnist_lenet``): hidden layers of equal width inserted or dropped.

As the reference (VITA-Group/ElasticLTH ``change_depth_mnist_lenet``), the mapping string acts
on the ``fc_layers`` indices (every hidden Linear layer; the output layer ``fc`` is copied one
to one) and is one string for the whole network. A stage is a run of equal widths: its first
layer changes the width (784 → 300, 300 → 100) and is copied one to one, the others (300 → 300)
are replicated or dropped with their masks and init. ``mnist_lenet_300_300_100`` →
``mnist_lenet_300_300_300_100`` is ``0:0;1:1,2;2:3``. The widths of the runs never change.

Example:
    >>> from ticketfmt.converters.base import plan_conversion
    >>> plan_conversion("mnist_lenet_300_300_100", "mnist_lenet_300_300_300_100").mapping
    '0:0;1:1,2;2:3'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ticketfmt.errors import ConversionError
from ticketfmt.zoo import ArchSpec

from ticketfmt.converters.base import FamilyConverter
from ticketfmt.converters.notation import Notation
from ticketfmt.converters.registry import register
from ticketfmt.converters.resnet import _linear_default

if TYPE_CHECKING:  # torch only draws a re-initialized classifier (--num-classes)
    import torch

__all__ = ["LeNetConverter"]


class LeNetConverter(FamilyConverter):
    families = ("mnist_lenet",)

    def stage_labels(self, spec: ArchSpec) -> list[str]:
        return [f"the {w}-wide layers" for w in spec.block.split("-")]

    def notation(self, spec: ArchSpec) -> Notation:
        units = [(s, j) for s, n in enumerate(spec.stages) for j in range(n)]
        return Notation(dict(enumerate(units)), "fc_layers.{i}")

    def check_blocks(self, source: ArchSpec, target: ArchSpec) -> None:
        if source.block != target.block:
            raise ConversionError(f"{source.id} has runs of widths {source.block} and {target.id} {target.block}: a "
                                  "conversion inserts or drops layers of a width the network already has",
                                  fix=f"keep the widths {source.block} (e.g. repeat the {source.block.split('-')[0]}-"
                                      "wide layer)")

    def classifier_keys(self, spec: ArchSpec) -> tuple[str, ...]:
        return ("fc.weight", "fc.bias")

    def init_classifier(self, spec: ArchSpec, shapes: dict[str, tuple[int, ...]], generator: torch.Generator,
                        dtype: torch.dtype) -> dict[str, torch.Tensor]:
        return _linear_default(shapes, "fc.weight", "fc.bias", generator, dtype)  # nn.Linear's own init


register(LeNetConverter())
