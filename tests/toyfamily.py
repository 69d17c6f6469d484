"""``vtoy``: a toy architecture family with a versioned prunable set, for the format's tests and its 1.1 golden files.

An ImageNet VGG has a 25088 x 4096 classifier layer at any size, too big for a fast test: this family
has the same versioned rule (its hidden layer prunable since format 1.1, its output layer dense), and
a conv weight of 18 elements, so a packed mask has padding bits (18 % 8 != 0), which no zoo
architecture has (every zoo weight has a multiple of 8 elements).
"""

from __future__ import annotations

import torch

from ticketfmt.zoo import ArchSpec, Family


class VersionedToy(Family):
    """``vtoy``: conv stem, a hidden linear layer (prunable since format 1.1), a dense output layer."""

    name = "vtoy"
    libraries = ("builtin",)
    default_classes = 3
    input_size = (1, 4, 4)

    def parse(self, name: str, library: str) -> ArchSpec | None:
        return self.make(library, "toy", (1,)) if name == "vtoy" else None

    def canonical_name(self, block: str, stages: tuple[int, ...]) -> str:
        return "vtoy"

    def depth(self, spec: ArchSpec) -> int:
        return 3

    def build(self, spec: ArchSpec) -> torch.nn.Module:
        return torch.nn.ModuleDict({"conv": torch.nn.Conv2d(1, 2, 3), "hidden": torch.nn.Linear(8, 8),
                                    "out": torch.nn.Linear(8, spec.num_classes)})

    def constructor(self, spec: ArchSpec) -> dict[str, object]:
        return {"class": "toyfamily.VersionedToy"}

    def is_prunable(self, spec: ArchSpec, module_name: str, module: torch.nn.Module) -> bool:
        return super().is_prunable(spec, module_name, module) and module_name != "out"

    def prunable_since(self, spec: ArchSpec, weight: str) -> str:
        return "1.1" if weight == "hidden.weight" else "1.0"
