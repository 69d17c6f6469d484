"""The networks of the lottery-ticket literature that neither timm nor torchvision ships.

- ``CifarResNet``: He et al. (2016)'s CIFAR ResNet-(6n+2): a 3×3 stem of 16 channels,
  three stages of BasicBlocks of widths 16/32/64 (stride 2 and a 1×1 conv + BN projection
  where the shape changes), global average pooling and one linear layer. Parameter names
  follow torchvision (``conv1``, ``bn1``, ``layerS.J.conv1``, ``layerS.0.downsample.0``,
  ``fc``) so the ResNet converters treat every library alike.
- ``CifarVGG``: the CIFAR VGG of open_lth (3×3 conv with bias + BN + ReLU, max-pool between
  stages, average pool, one linear 512→classes), laid out as torchvision's ``features``
  sequence so VGG units have the same indices in every library.

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

__all__ = ["CifarResNet", "CifarVGG", "VGG_WIDTHS"]

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
