"""Elastic conversion of the CIFAR VGG with n FC layers (``cifar_vggnfc``): the classifier's depth changes.

As the reference (VITA-Group/ElasticLTH ``change_depth_cifar_vggnfc``), everything but the
hidden classifier layers is copied one to one (the convs, their BatchNorms and the output
layer ``fc``), and the mapping string acts on the ``classifier`` Sequential's indices, where
the Linear(8W, 8W) layers sit at 0, 2, 4, ... (a ReLU between them). The hidden layers are
all alike, so the first one is no different from the others: 3 → 5 FC layers interpolates
to ``0:0,2;2:4,6`` (each hidden layer twice), 5 → 2 spreads to ``0:0``. Only the number of FC
layers may change: the conv stages (VGG depth and width) are the source's.

Example:
    >>> from ticketfmt.converters.base import plan_conversion
    >>> plan_conversion("cifar_vggnfc_13_64_3", "cifar_vggnfc_13_64_5").mapping
    '0:0,2;2:4,6'
    >>> plan_conversion("cifar_vggnfc_13_64_5", "cifar_vggnfc_13_64_2").mapping
    '0:0'
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

__all__ = ["VGGNFCConverter"]

CLASSIFIER_STAGE = 5


class VGGNFCConverter(FamilyConverter):
    families = ("cifar_vggnfc",)

    def stage_labels(self, spec: ArchSpec) -> list[str]:
        return [f"conv stage {s + 1}" for s in range(5)] + ["the hidden classifier layers"]

    def fixed_first_unit(self, spec: ArchSpec, stage: int) -> bool:
        return stage != CLASSIFIER_STAGE  # every hidden Linear(8W, 8W) is alike

    def notation(self, spec: ArchSpec) -> Notation:
        return Notation({2 * j: (CLASSIFIER_STAGE, j) for j in range(spec.stages[CLASSIFIER_STAGE])},
                        "classifier.{i}")

    def check_blocks(self, source: ArchSpec, target: ArchSpec) -> None:
        if source.block != target.block:
            d, w = source.block[len("vgg"):].split("-")
            n = target.stages[CLASSIFIER_STAGE] + 1
            raise ConversionError(f"{source.id} and {target.id} differ in their convs (VGG depth or width); a "
                                  "cifar_vggnfc conversion changes the number of FC layers only, as the reference's",
                                  fix=f"convert to cifar_vggnfc_{d}_{w}_{n}" if w == "64" else
                                      "convert between VGGs of the same depth and width")

    def classifier_keys(self, spec: ArchSpec) -> tuple[str, ...]:
        return ("fc.weight", "fc.bias")

    def init_classifier(self, spec: ArchSpec, shapes: dict[str, tuple[int, ...]], generator: torch.Generator,
                        dtype: torch.dtype) -> dict[str, torch.Tensor]:
        return _linear_default(shapes, "fc.weight", "fc.bias", generator, dtype)  # nn.Linear's own init


register(VGGNFCConverter())
