"""The LeNet MLPs on MNIST (the Elastic LTH paper's Appendix C; open_lth's ``mnist_lenet_N1[_N2...]``).

``mnist_lenet_300_100`` is 784 → 300 → 100 → 10: the hidden Linear layers are ``fc_layers.{i}``
(each followed by a ReLU) and the output layer is ``fc``, the reference's module names. As the
reference prunes it (``pruning_layers_to_ignore='fc.weight'``), the hidden layers are
prunable and ``fc`` is not.

Units are the hidden layers, and a stage is a run of layers of equal width: the paper's
widths {784, 300 × n, 100, 10} are two stages, ``(n, 1)``. Unit 0 of a stage changes the
width (784 → 300, 300 → 100) and is copied one to one; the others (300 → 300) are the layers a
conversion inserts or drops, so ``mnist_lenet_300_300_100`` → ``mnist_lenet_300_300_300_100``
replicates layer 1. The block names the widths of the runs (``300-100``), which a conversion
never changes.

Example:
    >>> from ticketfmt.zoo import get_arch, prunable_names
    >>> spec = get_arch("mnist_lenet_300_300_100")
    >>> spec.block, spec.stages, spec.unit_prefixes(1, 0), prunable_names(spec)
    ('300-100', (2, 1), ('fc_layers.2.',), ['fc_layers.0.weight', 'fc_layers.1.weight', 'fc_layers.2.weight'])
"""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING, Any

from ticketfmt.errors import UnknownArchError
from ticketfmt.zoo.base import ArchSpec, Family
from ticketfmt.zoo.infer import library_of, out_features
from ticketfmt.zoo.registry import register_family

if TYPE_CHECKING:
    from torch import nn

__all__ = ["MnistLeNetFamily", "lenet_widths", "MAX_WIDTH"]

MAX_WIDTH = 16384


def lenet_widths(spec: ArchSpec) -> tuple[int, ...]:
    """The hidden widths, layer by layer: ``(300, 300, 100)`` for ``mnist_lenet_300_300_100``.

    Example:
        >>> from ticketfmt.zoo import get_arch
        >>> lenet_widths(get_arch("mnist_lenet_300_300_100"))
        (300, 300, 100)
    """
    runs = [int(w) for w in spec.block.split("-")]
    return tuple(w for w, n in zip(runs, spec.stages, strict=True) for _ in range(n))


class MnistLeNetFamily(Family):
    """``mnist_lenet_N1[_N2...]``: an MLP on 28×28 MNIST digits with hidden layers of widths N1, N2, ..."""

    name = "mnist_lenet"
    libraries = ("builtin",)
    default_classes = 10
    input_size = (1, 28, 28)
    max_units = 64
    unit_word = "layers"

    def parse(self, name: str, library: str) -> ArchSpec | None:
        m = re.fullmatch(r"mnist_lenet((?:_\d+)+)", name)
        if not m:
            return None
        widths = [int(w) for w in m.group(1)[1:].split("_")]
        if not all(1 <= w <= MAX_WIDTH for w in widths):
            raise UnknownArchError(f"{name!r}: every hidden width must be in 1..{MAX_WIDTH}",
                                   fix="e.g. mnist_lenet_300_100")
        runs = [(w, len(list(g))) for w, g in itertools.groupby(widths)]
        return self.make(library, "-".join(str(w) for w, _ in runs), tuple(n for _, n in runs))

    def canonical_name(self, block: str, stages: tuple[int, ...]) -> str:
        runs = block.split("-")
        return "mnist_lenet_" + "_".join(w for w, n in zip(runs, stages, strict=True) for _ in range(n))

    def named_ids(self) -> tuple[str, ...]:
        return ("mnist_lenet_300_100", "mnist_lenet_300_300_100", "mnist_lenet_300_300_300_100")

    def depth(self, spec: ArchSpec) -> int:
        return sum(spec.stages) + 1

    def unit_prefixes(self, spec: ArchSpec, stage: int, index: int) -> tuple[str, ...]:
        return (f"fc_layers.{sum(spec.stages[:stage]) + index}.",)

    def stage_of(self, spec: ArchSpec, key: str) -> str:
        m = re.match(r"fc_layers\.(\d{1,9})\.", key)
        if not m:
            return "head" if key.startswith("fc.") else "stem"
        i, end = int(m.group(1)), 0
        for s, n in enumerate(spec.stages):
            end += n
            if i < end:
                return f"stage{s + 1}"
        return "head"

    def is_prunable(self, spec: ArchSpec, module_name: str, module: nn.Module) -> bool:
        return super().is_prunable(spec, module_name, module) and module_name != "fc"

    def infer(self, model: nn.Module) -> ArchSpec | None:
        if library_of(model) != "builtin" or type(model).__name__ != "MnistLeNet":
            return None
        widths = [layer.out_features for layer in model.fc_layers]  # type: ignore[union-attr]
        runs = [(w, len(list(g))) for w, g in itertools.groupby(widths)]
        return self.make("builtin", "-".join(str(w) for w, _ in runs), tuple(n for _, n in runs),
                         out_features(model.fc))  # type: ignore[arg-type]

    def build(self, spec: ArchSpec) -> nn.Module:
        from ticketfmt.models import MnistLeNet
        return MnistLeNet(lenet_widths(spec), num_classes=spec.num_classes)

    def constructor(self, spec: ArchSpec) -> dict[str, Any]:
        return {"class": "ticketfmt.models.MnistLeNet", "widths": list(lenet_widths(spec))}


register_family(MnistLeNetFamily())
