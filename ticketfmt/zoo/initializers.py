"""How new models are initialized: the reference implementation's initializer, or the library's own.

``reference`` (the default of :func:`ticketfmt.zoo.build_model`) is what open_lth does to every
model it creates (``models/initializers.py: kaiming_normal`` with
``models/bn_initializers.py: uniform``, applied with ``model.apply``):

===================  =====================================================================
layer                reference init
===================  =====================================================================
Conv2d, Linear       weight ~ N(0, 2 / fan_in) (``kaiming_normal_``: fan_in, gain √2), the
                     output layer included; bias left as the module was constructed
BatchNorm2d          γ ~ U(0, 1), β = 0 (running statistics untouched)
===================  =====================================================================

It is applied over whatever the library's constructor did, as the reference does over its
torchvision-style ImageNet ResNet: timm's ``zero_init_last`` (γ = 0 on each block's last BN)
and torchvision's fan_out init are overwritten, biases keep the library's values (PyTorch's
default for the builtin CIFAR models, which the reference's CIFAR models also have).
``library`` is the named departure: the library's own init only.

Example:
    >>> from ticketfmt.zoo import build_model
    >>> model = build_model("cifar_vgg11", seed=0)  # init="reference"
    >>> bool((model.features[1].bias == 0).all())
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

__all__ = ["INITS", "check_init", "reference_init"]

INITS = ("reference", "library")
"""The initializers of :func:`ticketfmt.zoo.build_model`: the reference's (default) and the library's own."""


def check_init(init: str) -> None:
    """Raise a one-line ``ValueError`` unless ``init`` is one of :data:`INITS`.

    Example:
        >>> check_init("torchvision")
        Traceback (most recent call last):
        ...
        ValueError: unknown init 'torchvision': use 'reference' (the paper's, default) or 'library' (timm's, torchvision's or the builtin modules' own)
    """
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}: use 'reference' (the paper's, default) or 'library' "
                         "(timm's, torchvision's or the builtin modules' own)")


def reference_init(model: nn.Module) -> nn.Module:
    """Initialize ``model`` in place as the reference does; returns it.

    Modules are visited in ``model.apply`` order (children before parents, in registration
    order) and random numbers drawn from the default generator as the reference draws them,
    so a builtin CIFAR model built after ``torch.manual_seed(s)`` equals the reference's
    model built after the same call, tensor for tensor.

    Example:
        >>> import torch
        >>> conv = reference_init(torch.nn.Conv2d(16, 32, 3))
        >>> round(conv.weight.std().item(), 1)  # sqrt(2 / (16 * 3 * 3)) = 0.118
        0.1
    """
    import torch
    from torch import nn

    def visit(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Conv2d):
            nn.init.kaiming_normal_(module.weight)
        if isinstance(module, nn.BatchNorm2d) and module.affine:
            with torch.no_grad():
                # torch.rand with the weight's shape, as the reference draws it (same stream on the CPU).
                module.weight.copy_(torch.rand(module.weight.shape))
                module.bias.zero_()

    return model.apply(visit)
