"""The networks of the lottery-ticket literature that neither timm nor torchvision ships.

- ``CifarResNet``: He et al. (2016)'s CIFAR ResNet-(6n+2): a 3×3 stem of 16 channels,
  three stages of BasicBlocks of widths 16/32/64 (stride 2 and a 1×1 conv + BN projection
  where the shape changes), global average pooling and one linear layer. Parameter names
  follow torchvision (``conv1``, ``bn1``, ``layerS.J.conv1``, ``layerS.0.downsample.0``,
  ``fc``) so the ResNet converters treat every library alike.
- ``CifarVGG``: the CIFAR VGG of open_lth (3×3 conv with bias + BN + ReLU, max-pool between
  stages, average pool, one linear 512→classes), laid out as torchvision's ``features``
  sequence so VGG units have the same indices in every library.
- ``CifarVGGNFC``, ``MnistLeNet``, ``CifarMobileNetV1``: the networks of the Elastic LTH paper's
  appendix, with the reference's own module names (VITA-Group/ElasticLTH ``cifar_vggnfc``,
  open_lth ``mnist_lenet``, ElasticLTH ``cifar_mobilenetv1``), since its mapping strings index
  them (``classifier.{i}``, ``fc_layers.{i}``, ``layers_part2.{i}``).

Both are constructed with PyTorch's default initialization, layer for layer in the order of
the reference's models, so :func:`ticketfmt.zoo.build_model` can apply the reference's
initializer to the same random stream (``init="reference"``); ``library_init()`` is the
init these modules used to run in their constructors (``init="library"``).

Example:
    >>> import torch
    >>> from ticketfmt.models import CifarResNet
    >>> CifarResNet((3, 3, 3), num_classes=10)(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["CifarResNet", "CifarVGG", "VGG_WIDTHS", "CifarVGGNFC", "MnistLeNet", "CifarMobileNetV1",
           "MOBILENET_PARTS"]

VGG_WIDTHS = (64, 128, 256, 512, 512)


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class CifarResNet(nn.Module):
    """CIFAR ResNet with ``blocks[s]`` BasicBlocks in stage ``s`` (three stages: 16, 32, 64 wide)."""

    def __init__(self, blocks: Sequence[int], num_classes: int = 10, widths: Sequence[int] = (16, 32, 64)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        in_planes = widths[0]
        for s, (n, width) in enumerate(zip(blocks, widths, strict=True)):
            stage = [BasicBlock(in_planes if j == 0 else width, width, 2 if (s > 0 and j == 0) else 1) for j in range(n)]
            self.add_module(f"layer{s + 1}", nn.Sequential(*stage))
            in_planes = width
        self.num_stages = len(blocks)
        self.fc = nn.Linear(in_planes, num_classes)

    def library_init(self) -> None:
        """This module's own init (``init="library"``): conv weights ~ N(0, 2 / fan_out), the rest PyTorch's default."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        for s in range(self.num_stages):
            x = getattr(self, f"layer{s + 1}")(x)
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


def vgg_features(convs_per_stage: Sequence[int], batch_norm: bool, pool_last: bool, conv_bias: bool = True) -> nn.Sequential:
    """torchvision's VGG ``features`` layout: conv [BN] ReLU per layer, max-pool after each stage."""
    layers: list[nn.Module] = []
    in_ch = 3
    for s, (n, width) in enumerate(zip(convs_per_stage, VGG_WIDTHS, strict=True)):
        for _ in range(n):
            layers.append(nn.Conv2d(in_ch, width, 3, padding=1, bias=conv_bias))
            if batch_norm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.ReLU(inplace=True))
            in_ch = width
        if pool_last or s < len(convs_per_stage) - 1:
            layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers)


class CifarVGG(nn.Module):
    """CIFAR VGG with ``convs[s]`` 3×3 conv + BN + ReLU layers in stage ``s`` and one linear classifier."""

    def __init__(self, convs: Sequence[int], num_classes: int = 10) -> None:
        super().__init__()
        self.features = vgg_features(convs, batch_norm=True, pool_last=False)
        self.classifier = nn.Linear(VGG_WIDTHS[len(convs) - 1], num_classes)

    def library_init(self) -> None:
        """This module's own init (``init="library"``): conv weights ~ N(0, 2 / fan_in), conv biases zero."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(x)


class _ConvModule(nn.Module):
    """A VGG conv layer of the reference: 3×3 conv with bias, BN, ReLU (``conv``, ``bn``)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x)))


class CifarVGGNFC(nn.Module):
    """The CIFAR VGG with ``num_fc`` fully connected layers (ElasticLTH's ``cifar_vggnfc_D_W_N``).

    ``layers``: conv modules of widths ``width`` × (1, 2, 4, 8, 8) per stage, a max-pool between
    stages; a 2×2 average pool; ``classifier``: ``num_fc - 1`` × [Linear(8w, 8w), ReLU]; ``fc``.
    """

    def __init__(self, convs: Sequence[int], width: int = 64, num_fc: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        for s, n in enumerate(convs):
            if s:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            for _ in range(n):
                layers.append(_ConvModule(in_ch, width * (1, 2, 4, 8, 8)[s]))
                in_ch = width * (1, 2, 4, 8, 8)[s]
        self.layers = nn.Sequential(*layers)
        hidden: list[nn.Module] = []
        for _ in range(num_fc - 1):
            hidden += [nn.Linear(in_ch, in_ch), nn.ReLU()]
        self.classifier = nn.Sequential(*hidden)
        self.fc = nn.Linear(in_ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.avg_pool2d(self.layers(x), 2)
        return self.fc(self.classifier(torch.flatten(x, 1)))


class MnistLeNet(nn.Module):
    """open_lth's LeNet MLP ``mnist_lenet_N1_N2...``: ``fc_layers`` (784 → N1 → N2 ..., ReLU) and ``fc``."""

    def __init__(self, widths: Sequence[int], num_classes: int = 10, inputs: int = 784) -> None:
        super().__init__()
        sizes = [inputs, *widths]
        self.fc_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.fc = nn.Linear(sizes[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        for layer in self.fc_layers:
            x = torch.relu(layer(x))
        return self.fc(x)


class _DepthwiseSeparable(nn.Module):
    """A MobileNetV1 block: 3×3 depthwise conv + BN + ReLU, 1×1 pointwise conv + BN + ReLU (no biases)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, in_ch, 3, stride, 1, groups=in_ch, bias=False)
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv2 = nn.Conv2d(in_ch, out_ch, 1, 1, 0, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


MOBILENET_PARTS = (((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)), ((1024, 2), (1024, 1)))
"""``(channels, stride)`` of the blocks of MobileNetV1's ``layers_part1`` and ``layers_part3``."""


class CifarMobileNetV1(nn.Module):
    """ElasticLTH's CIFAR MobileNetV1 ``cifar_mobilenetv1[_N]``: ``layers_part2`` holds N stride-1 512-channel blocks.

    ``conv``/``bn`` (3 → 32), ``layers_part1`` (6 blocks to 512 channels), ``layers_part2``,
    ``layers_part3`` (to 1024 channels), global average pool, ``fc``.
    """

    def __init__(self, blocks: int = 5, num_classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 32, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(32)
        part2 = ((512, 1),) * blocks
        in_ch = 32
        for name, cfg in (("layers_part1", MOBILENET_PARTS[0]), ("layers_part2", part2),
                          ("layers_part3", MOBILENET_PARTS[1])):
            units = []
            for out_ch, stride in cfg:
                units.append(_DepthwiseSeparable(in_ch, out_ch, stride))
                in_ch = out_ch
            self.add_module(name, nn.Sequential(*units))
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv(x)))
        x = self.layers_part3(self.layers_part2(self.layers_part1(x)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

