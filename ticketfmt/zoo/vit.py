"""Vision transformers: timm's ViT-Ti/S/B and DeiT-Ti/S/B (224×224) and small ViTs for 32×32 inputs.

A ViT is one stage of identical pre-norm blocks (``blocks.{j}.``), so it is a
:class:`~ticketfmt.zoo.staged.StagedFamily`: the unit is a whole block; the prunable set is the
Linear weights of attention (``attn.qkv``, ``attn.proj``) and MLP (``mlp.fc1``, ``mlp.fc2``) in
the blocks; the stem (``patch_embed``, ``cls_token``, ``pos_embed``), the final ``norm`` and the
``head`` stay dense. Every model is timm's ``VisionTransformer`` built without pretrained weights.

Ids:

- ``vit_tiny_patch16_224``, ``vit_small_patch16_224``, ``vit_base_patch16_224`` and the DeiT ids
  ``deit_tiny_patch16_224``, ... (12 blocks; DeiT's non-distilled models are the same module);
  ``-N`` after an id gives N blocks (``vit_tiny_patch16_224-8``), the conversion targets;
- ``cifar_vit_tiny-N`` / ``cifar_vit_small-N``: 32×32 inputs, 4×4 patches (64 tokens and the class
  token), 10 classes, the width and heads of ViT-Ti / ViT-S, N blocks: what a CPU can train.

The reference initializer (``init="reference"``) re-draws every Linear and Conv2d weight as the
reference does for its networks (N(0, 2 / fan_in)); ``init="library"`` keeps timm's ViT init
(truncated N(0, 0.02²) Linear weights, zero biases).

Example:
    >>> from ticketfmt.zoo import get_arch, prunable_names
    >>> spec = get_arch("cifar_vit_tiny-6")
    >>> spec.id, spec.stages, spec.num_classes, len(prunable_names(spec))
    ('timm/cifar_vit_tiny-6', (6,), 10, 24)
    >>> get_arch("deit_small_patch16_224-8").stages
    (8,)
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ticketfmt.errors import UnknownArchError
from ticketfmt.zoo.base import ArchSpec
from ticketfmt.zoo.infer import library_of, out_features
from ticketfmt.zoo.registry import register_family
from ticketfmt.zoo.shapes import VIT_WIDTHS, vit_size
from ticketfmt.zoo.staged import StagedFamily

if TYPE_CHECKING:
    from torch import nn

__all__ = ["ViTFamily", "CifarViTFamily", "VIT_DEPTH"]

VIT_DEPTH = 12
"""The depth of timm's named ViT and DeiT models."""

_SIZES = "|".join(VIT_WIDTHS)


class _ViTBase(StagedFamily):
    """Shared by the ImageNet and the CIFAR ViTs: one stage of blocks, built as timm's VisionTransformer."""

    libraries = ("timm",)
    default_library = "timm"
    max_units = 64  # ViT-H has 32 blocks
    unit_word = "blocks"
    prunable = r"blocks\.\d+\.(attn\.(qkv|proj)|mlp\.fc[12])"
    head_prefixes = ("head.", "norm.")
    patch = 16
    pattern = re.compile("")

    def parse(self, name: str, library: str) -> ArchSpec | None:
        m = self.pattern.fullmatch(name)
        if not m:
            return None
        depth = int(m.group("depth")) if m.group("depth") else self.default_depth(m.group("block"))
        if depth < 1:
            raise UnknownArchError(f"{name!r}: a ViT has at least one block", fix=f"use {m.group('block')}-6")
        return self.make(library, m.group("block"), (depth,))

    def default_depth(self, block: str) -> int:
        raise UnknownArchError(f"{block!r} needs its number of blocks", fix=f"write it as {block}-6")

    def depth(self, spec: ArchSpec) -> int:
        return spec.stages[0]

    def kwargs(self, spec: ArchSpec) -> dict[str, Any]:
        """The keyword arguments of timm's ``VisionTransformer`` for ``spec`` (recorded as its constructor)."""
        dim, heads = VIT_WIDTHS[vit_size(spec.block)]
        return {"img_size": spec.input_size[1], "patch_size": self.patch, "embed_dim": dim, "depth": spec.stages[0],
                "num_heads": heads, "num_classes": spec.num_classes}

    def build(self, spec: ArchSpec) -> nn.Module:
        from timm.models.vision_transformer import VisionTransformer
        return VisionTransformer(**self.kwargs(spec))

    def constructor(self, spec: ArchSpec) -> dict[str, Any]:
        return {"class": "timm.models.vision_transformer.VisionTransformer", **self.kwargs(spec)}

    def infer(self, model: nn.Module) -> ArchSpec | None:
        if library_of(model) != "timm" or type(model).__name__ != "VisionTransformer":
            return None
        embed = model.patch_embed
        dim = getattr(model, "embed_dim", None)
        patch, img = embed.patch_size[0], embed.img_size[0]  # type: ignore[index]
        size = next((w for w, (d, _) in VIT_WIDTHS.items() if d == dim), None)
        if size is None or patch != self.patch or img != self.input_size[1]:
            return None
        return self.make("timm", self.block_for(size), (len(model.blocks),),  # type: ignore[arg-type]
                         out_features(getattr(model, "head", None)))

    def block_for(self, size: str) -> str:
        raise NotImplementedError


class ViTFamily(_ViTBase):
    """timm's ViT-Ti/S/B and DeiT-Ti/S/B at 224×224 (patch 16): ``vit_base_patch16_224``, ``deit_tiny_…-8``."""

    name = "vit"
    pattern = re.compile(rf"(?P<block>(?:vit|deit)_(?:{_SIZES})_patch16_224)(?:-(?P<depth>\d+))?")

    def default_depth(self, block: str) -> int:
        return VIT_DEPTH

    def canonical_name(self, block: str, stages: tuple[int, ...]) -> str:
        return block if stages == (VIT_DEPTH,) else f"{block}-{stages[0]}"

    def named_ids(self) -> tuple[str, ...]:
        return tuple(f"timm/{kind}_{size}_patch16_224" for kind in ("vit", "deit") for size in VIT_WIDTHS)

    def block_for(self, size: str) -> str:
        return f"vit_{size}_patch16_224"


class CifarViTFamily(_ViTBase):
    """ViTs for 32×32 inputs (patch 4, 10 classes): ``cifar_vit_tiny-6`` (ViT-Ti's width, 6 blocks)."""

    name = "cifar_vit"
    default_classes = 10
    input_size = (3, 32, 32)
    patch = 4
    pattern = re.compile(rf"(?P<block>cifar_vit_(?:{_SIZES}))(?:-(?P<depth>\d+))?")

    def canonical_name(self, block: str, stages: tuple[int, ...]) -> str:
        return f"{block}-{stages[0]}"

    def named_ids(self) -> tuple[str, ...]:
        return ("timm/cifar_vit_tiny-6", "timm/cifar_vit_tiny-8")

    def block_for(self, size: str) -> str:
        return f"cifar_vit_{size}"


register_family(ViTFamily())
register_family(CifarViTFamily())
