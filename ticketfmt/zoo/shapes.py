"""State-dict layouts of the zoo's architectures, computed from their :class:`ArchSpec` alone (no torch).

A ticket's checks and the packed conversion path need every state-dict key of an
architecture with its shape and dtype, and which weights are prunable; not a module. The
built-in families are regular enough to be described as data, which this module interprets:

- a ResNet is a stem conv + BN, stages of residual blocks (a block type: its convs' kernel
  sizes and its channel expansion), a projection shortcut (``downsample``: 1×1 conv + BN) on
  the block whose stride or width changes, and one linear classifier ``fc``;
- a VGG is ``features`` (per stage, ``n`` 3×3 convs with bias, each followed by a BN for the
  ``conv_bn`` block, a ReLU, and a max-pool between stages) and its library's classifier.
- a ViT (timm's ``VisionTransformer``) is a class token, a position embedding, a patch-embedding
  conv, one stage of pre-norm blocks (``blocks.j``: attention ``qkv``/``proj``, MLP ``fc1``/``fc2``,
  whose Linear weights are prunable), a final LayerNorm and a linear ``head``;
- a ConvNeXt (timm's) is a patchify stem, four stages (``stages.s``: a downsample, then blocks
  ``blocks.j`` of a depthwise conv and an MLP, prunable) and a ``head`` (norm, fc).
- the paper's appendix networks, with the reference's names: a VGG with n FC layers
  (``layers.i.conv``/``.bn``, hidden ``classifier.2j`` Linear layers, ``fc``), a LeNet MLP
  (``fc_layers.i``, ``fc``) and a CIFAR MobileNetV1 (``conv``/``bn``, depthwise-separable blocks
  ``layers_partK.j``, ``fc``).

Keys come in the order of the modules' ``state_dict()`` (parameters, then buffers, module by
module), which is also the order ticket files store them in. ``tests/test_shapes.py`` checks the
table of every zoo id, and of generated depths, against the real timm, torchvision and builtin
modules. A family not described here (a plugin) returns None: :mod:`ticketfmt.zoo.base` then
builds it on the meta device.

Example:
    >>> from ticketfmt.zoo import get_arch
    >>> table = layout(get_arch("cifar_resnet20"))
    >>> table[0], len(table)
    (TensorSpec(name='conv1.weight', shape=(16, 3, 3, 3), dtype='F32', prunable=True), 116)
    >>> [t.name for t in layout(get_arch("torchvision/vgg11")) if t.prunable][-2:]
    ['classifier.0.weight', 'classifier.3.weight']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ticketfmt.zoo.base import ArchSpec

__all__ = ["TensorSpec", "ResNetBlock", "RESNET_BLOCKS", "VGG_WIDTHS", "VIT_WIDTHS", "vit_size", "LAYOUTS", "layout",
           "TORCH_DTYPE_NAMES", "CONVNEXT_DIMS", "CONVNEXT_CONV_MLP"]

VGG_WIDTHS = (64, 128, 256, 512, 512)
"""Channels of the convs of each VGG stage (every library; ``ticketfmt.models`` builds the same)."""

TORCH_DTYPE_NAMES = {"torch.float32": "F32", "torch.float16": "F16", "torch.bfloat16": "BF16",
                     "torch.float64": "F64", "torch.int64": "I64", "torch.int32": "I32", "torch.uint8": "U8",
                     "torch.int8": "I8", "torch.int16": "I16", "torch.bool": "BOOL"}
"""safetensors' name of each torch dtype a state dict may hold (for modules built on the meta device)."""


@dataclass(frozen=True)
class TensorSpec:
    """One state-dict entry: its key, shape, safetensors dtype and whether a ticket masks it."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    prunable: bool = False


@dataclass(frozen=True)
class ResNetBlock:
    """A residual block type as data: its convs' kernel sizes and its channel expansion.

    Conv ``i`` maps the block's input (``i == 0``) or ``planes`` channels to ``planes``, the
    last one to ``planes * expansion``; each is followed by a BN ``bn{i+1}``.
    """

    kernels: tuple[int, ...]
    expansion: int


RESNET_BLOCKS = {"basic": ResNetBlock((3, 3), 1), "bottleneck": ResNetBlock((1, 3, 1), 4)}
"""The block types of the ResNet families (torchvision's and timm's ``BasicBlock`` and ``Bottleneck``)."""


@dataclass(frozen=True)
class _ResNetFamily:
    stem_kernel: int
    widths: tuple[int, ...]


@dataclass(frozen=True)
class _VGGFamily:
    pool_last: bool


VIT_WIDTHS = {"tiny": (192, 3), "small": (384, 6), "base": (768, 12)}
"""Embedding width and attention heads of each ViT size (timm's ViT-Ti/S/B and DeiT-Ti/S/B)."""


@dataclass(frozen=True)
class _ViTFamily:
    patch: int


CONVNEXT_DIMS = {"atto": (40, 80, 160, 320), "femto": (48, 96, 192, 384), "pico": (64, 128, 256, 512),
                 "nano": (80, 160, 320, 640), "tiny": (96, 192, 384, 768), "small": (96, 192, 384, 768),
                 "base": (128, 256, 512, 1024)}
"""Channels of each stage of timm's ConvNeXt sizes (atto .. nano use 1x1-conv MLPs, ``conv_mlp``)."""
CONVNEXT_CONV_MLP = ("atto", "femto", "pico", "nano")


def _conv(name: str, c_out: int, c_in: int, kernel: int, bias: bool, prunable: bool = True) -> list[TensorSpec]:
    out = [TensorSpec(f"{name}.weight", (c_out, c_in, kernel, kernel), "F32", prunable)]
    return out + [TensorSpec(f"{name}.bias", (c_out,), "F32")] if bias else out


def _linear(name: str, c_out: int, c_in: int, prunable: bool) -> list[TensorSpec]:
    return [TensorSpec(f"{name}.weight", (c_out, c_in), "F32", prunable), TensorSpec(f"{name}.bias", (c_out,), "F32")]


def _bn(name: str, c: int) -> list[TensorSpec]:
    return [*(TensorSpec(f"{name}.{k}", (c,), "F32") for k in ("weight", "bias", "running_mean", "running_var")),
            TensorSpec(f"{name}.num_batches_tracked", (), "I64")]


def _resnet(family: _ResNetFamily, spec: ArchSpec) -> list[TensorSpec]:
    block = RESNET_BLOCKS[spec.block]
    last = len(block.kernels) - 1
    in_ch = family.widths[0]
    out = _conv("conv1", in_ch, 3, family.stem_kernel, False) + _bn("bn1", in_ch)
    for s, (n, planes) in enumerate(zip(spec.stages, family.widths, strict=True)):
        for j in range(n):
            p = f"layer{s + 1}.{j}"
            block_in = in_ch
            for i, k in enumerate(block.kernels):
                c_out = planes * block.expansion if i == last else planes
                out += _conv(f"{p}.conv{i + 1}", c_out, in_ch if i == 0 else planes, k, False)
                out += _bn(f"{p}.bn{i + 1}", c_out)
            in_ch = planes * block.expansion
            # The projection shortcut: where the block strides (block 0 of stages after the first) or widens.
            if j == 0 and (s > 0 or block_in != in_ch):
                out += _conv(f"{p}.downsample.0", in_ch, block_in, 1, False) + _bn(f"{p}.downsample.1", in_ch)
    return out + _linear("fc", spec.num_classes, in_ch, True)


def _vgg_features(family: _VGGFamily, spec: ArchSpec) -> tuple[list[TensorSpec], int]:
    out: list[TensorSpec] = []
    i, in_ch = 0, 3
    for s, n in enumerate(spec.stages):
        for _ in range(n):
            out += _conv(f"features.{i}", VGG_WIDTHS[s], in_ch, 3, True)
            in_ch = VGG_WIDTHS[s]
            if spec.block == "conv_bn":
                out += _bn(f"features.{i + 1}", in_ch)
            i += 3 if spec.block == "conv_bn" else 2  # conv [BN] ReLU
        i += 1 if (family.pool_last or s < len(spec.stages) - 1) else 0  # the max-pool
    return out, in_ch


def _vgg(family: _VGGFamily, spec: ArchSpec) -> list[TensorSpec]:
    out, in_ch = _vgg_features(family, spec)
    # Every conv and linear weight is prunable but the output layer's (the reference leaves `fc` dense).
    if spec.library == "timm":  # timm holds torchvision's first two linear layers as convolutions
        return (out + _conv("pre_logits.fc1", 4096, in_ch, 7, True) + _conv("pre_logits.fc2", 4096, 4096, 1, True)
                + _linear("head.fc", spec.num_classes, 4096, False))
    if spec.library == "torchvision":
        return (out + _linear("classifier.0", 4096, 512 * 7 * 7, True) + _linear("classifier.3", 4096, 4096, True)
                + _linear("classifier.6", spec.num_classes, 4096, False))
    return out + _linear("classifier", spec.num_classes, in_ch, False)


def vit_size(block: str) -> str:
    """The size word (``tiny``, ``small``, ``base``) of a ViT block name such as ``deit_small_patch16_224``."""
    return next(w for w in VIT_WIDTHS if f"_{w}" in f"_{block}")


def _vit(family: _ViTFamily, spec: ArchSpec) -> list[TensorSpec]:
    # timm's VisionTransformer: class token, learned position embedding, patch-embedding conv, pre-norm blocks
    # (LayerNorm, qkv, proj, LayerNorm, MLP fc1/fc2 with ratio 4), final LayerNorm, linear head.
    dim = VIT_WIDTHS[vit_size(spec.block)][0]
    tokens = (spec.input_size[1] // family.patch) * (spec.input_size[2] // family.patch) + 1
    out = [TensorSpec("cls_token", (1, 1, dim), "F32"), TensorSpec("pos_embed", (1, tokens, dim), "F32")]
    out += _conv("patch_embed.proj", dim, spec.input_size[0], family.patch, True, prunable=False)
    for j in range(sum(spec.stages)):
        p = f"blocks.{j}"
        out += [TensorSpec(f"{p}.norm1.{k}", (dim,), "F32") for k in ("weight", "bias")]
        out += _linear(f"{p}.attn.qkv", 3 * dim, dim, True) + _linear(f"{p}.attn.proj", dim, dim, True)
        out += [TensorSpec(f"{p}.norm2.{k}", (dim,), "F32") for k in ("weight", "bias")]
        out += _linear(f"{p}.mlp.fc1", 4 * dim, dim, True) + _linear(f"{p}.mlp.fc2", dim, 4 * dim, True)
    out += [TensorSpec(f"norm.{k}", (dim,), "F32") for k in ("weight", "bias")]
    return out + _linear("head", spec.num_classes, dim, False)


def _vggnfc(spec: ArchSpec) -> list[TensorSpec]:
    # The reference's cifar_vggnfc: layers.{i}.conv (with bias) + .bn, a max-pool between stages, the hidden
    # classifier.{2j} Linear layers (prunable) and the output layer fc (not). The block is "vgg{D}-{W}".
    width = int(spec.block.split("-")[1])
    out: list[TensorSpec] = []
    i, in_ch = 0, 3
    for s, n in enumerate(spec.stages[:5]):
        i += 1 if s else 0  # the max-pool
        for _ in range(n):
            c = width * (1, 2, 4, 8, 8)[s]
            out += _conv(f"layers.{i}.conv", c, in_ch, 3, True) + _bn(f"layers.{i}.bn", c)
            i, in_ch = i + 1, c
    for j in range(spec.stages[5]):
        out += _linear(f"classifier.{2 * j}", in_ch, in_ch, True)
    return out + _linear("fc", spec.num_classes, in_ch, False)


def _lenet(spec: ArchSpec) -> list[TensorSpec]:
    # open_lth's mnist_lenet: fc_layers.{i} (prunable) over runs of equal widths (the block "300-100"), then fc.
    widths = [int(w) for w, n in zip(spec.block.split("-"), spec.stages, strict=True) for _ in range(n)]
    sizes = [spec.input_size[0] * spec.input_size[1] * spec.input_size[2], *widths]
    out = [t for i in range(len(widths)) for t in _linear(f"fc_layers.{i}", sizes[i + 1], sizes[i], True)]
    return out + _linear("fc", spec.num_classes, sizes[-1], False)


MOBILENET_PART_WIDTHS = ((64, 128, 128, 256, 256, 512), None, (1024, 1024))
"""Output channels of the blocks of MobileNetV1's ``layers_part1`` and ``layers_part3`` (part 2: 512 each)."""


def _mobilenet(spec: ArchSpec) -> list[TensorSpec]:
    # ElasticLTH's cifar_mobilenetv1: conv + bn stem, depthwise-separable blocks (conv1 3x3 depthwise, bn1, conv2 1x1,
    # bn2; no biases) in layers_part1..3, fc; every conv and linear weight prunable.
    out = _conv("conv", 32, 3, 3, False) + _bn("bn", 32)
    in_ch = 32
    for s, n in enumerate(spec.stages):
        for j in range(n):
            c = MOBILENET_PART_WIDTHS[s][j] if MOBILENET_PART_WIDTHS[s] else 512  # type: ignore[index]
            p = f"layers_part{s + 1}.{j}"
            out += _conv(f"{p}.conv1", in_ch, 1, 3, False) + _bn(f"{p}.bn1", in_ch)
            out += _conv(f"{p}.conv2", c, in_ch, 1, False) + _bn(f"{p}.bn2", c)
            in_ch = c
    return out + _linear("fc", spec.num_classes, in_ch, True)


def _convnext(family: object, spec: ArchSpec) -> list[TensorSpec]:
    # timm's ConvNeXt: patchify stem (4x4 conv + LayerNorm2d); per stage a downsample (LayerNorm2d + 2x2 conv, not
    # before stage 1) and blocks (layer scale gamma, 7x7 depthwise conv, norm, MLP fc1/fc2: 1x1 convs for the small
    # sizes, Linear otherwise); head norm + fc. Prunable: the convs and linears inside the stages.
    size = spec.block.removeprefix("convnext_")
    dims, conv_mlp = CONVNEXT_DIMS[size], size in CONVNEXT_CONV_MLP

    def norm(name: str, c: int) -> list[TensorSpec]:
        return [TensorSpec(f"{name}.{k}", (c,), "F32") for k in ("weight", "bias")]

    def mlp(name: str, c_out: int, c_in: int) -> list[TensorSpec]:
        return _conv(name, c_out, c_in, 1, True) if conv_mlp else _linear(name, c_out, c_in, True)

    out = _conv("stem.0", dims[0], spec.input_size[0], 4, True, prunable=False) + norm("stem.1", dims[0])
    for s, n in enumerate(spec.stages):
        c = dims[s]
        if s > 0:
            out += norm(f"stages.{s}.downsample.0", dims[s - 1]) + _conv(f"stages.{s}.downsample.1", c, dims[s - 1], 2,
                                                                          True)
        for j in range(n):
            p = f"stages.{s}.blocks.{j}"
            out += [TensorSpec(f"{p}.gamma", (c,), "F32"), TensorSpec(f"{p}.conv_dw.weight", (c, 1, 7, 7), "F32", True),
                    TensorSpec(f"{p}.conv_dw.bias", (c,), "F32")]
            out += norm(f"{p}.norm", c) + mlp(f"{p}.mlp.fc1", 4 * c, c) + mlp(f"{p}.mlp.fc2", c, 4 * c)
    return out + norm("head.norm", dims[-1]) + _linear("head.fc", spec.num_classes, dims[-1], False)


def _family(kind: Callable[..., list[TensorSpec]], data: object) -> Callable[[ArchSpec], list[TensorSpec]]:
    return lambda spec: kind(data, spec)


LAYOUTS: dict[str, Callable[[ArchSpec], list[TensorSpec]]] = {
    "cifar_resnet": _family(_resnet, _ResNetFamily(stem_kernel=3, widths=(16, 32, 64))),
    "resnet": _family(_resnet, _ResNetFamily(stem_kernel=7, widths=(64, 128, 256, 512))),
    "vgg": _family(_vgg, _VGGFamily(pool_last=True)),
    "cifar_vgg": _family(_vgg, _VGGFamily(pool_last=False)),
    "cifar_vggnfc": _vggnfc,
    "mnist_lenet": _lenet,
    "cifar_mobilenetv1": _mobilenet,
    "vit": _family(_vit, _ViTFamily(patch=16)),
    "cifar_vit": _family(_vit, _ViTFamily(patch=4)),
    "convnext": _family(_convnext, None),
}
"""The built-in families' layouts, by family name."""


def layout(spec: ArchSpec) -> tuple[TensorSpec, ...] | None:
    """Every state-dict entry of ``spec`` in ``state_dict()`` order; None for a family not described here.

    Example:
        >>> from ticketfmt.zoo import get_arch
        >>> [t.shape for t in layout(get_arch("resnet50")) if t.name == "fc.weight"]
        [(1000, 2048)]
    """
    build = LAYOUTS.get(spec.family)
    return None if build is None else tuple(build(spec))
