"""The model zoo: architectures as data (:class:`ArchSpec`), one family per module, one registry.

- :mod:`.base`: :class:`ArchSpec`, the :class:`Family` interface and the lookups
  (:func:`get_arch`, :func:`build_model`, :func:`prunable_names`, ...);
- :mod:`.registry`: the family registry (a leaf; a duplicate name raises);
- :mod:`.initializers`: the reference initializer (the default of :func:`build_model`);
- :mod:`.resnet`, :mod:`.vgg`: the families, registered when this package is imported
  (with :mod:`.vggnfc`, :mod:`.lenet`, :mod:`.mobilenet`: the paper's appendix networks).

Adding a family: a module ``ticketfmt/zoo/<family>.py`` that subclasses :class:`Family` and
calls :func:`register_family`, plus its import line below (and, to convert its tickets
between depths, ``converters/<family>.py`` plus its import line in ``converters/__init__.py``).

Example:
    >>> from ticketfmt.zoo import get_arch, prunable_names
    >>> spec = get_arch("cifar_resnet20")
    >>> spec.depth, len(prunable_names(spec))
    (20, 22)
"""

from ticketfmt.zoo import resnet, vgg  # noqa: F401  (register the built-in families)
from ticketfmt.zoo import lenet, mobilenet, vggnfc  # noqa: F401  (the paper's appendix: MLPs, MobileNetV1, VGG-nFC)
from ticketfmt.zoo import convnext, vit  # noqa: F401  (staged families: timm ViTs/DeiTs, 32x32 ViTs, ConvNeXts)
from ticketfmt.zoo.base import (ArchSpec, Family, build_model, format_version_for, get_arch, in_state_dict_order,
                                iter_units, list_archs, prunable_names, spec_from_json, state_dict_dtypes,
                                state_dict_shapes)
from ticketfmt.zoo.initializers import INITS
from ticketfmt.zoo.registry import FAMILIES, get_family, register_family, unregister_family

__all__ = ["ArchSpec", "spec_from_json", "iter_units", "Family", "FAMILIES", "get_arch", "list_archs", "build_model",
           "register_family", "unregister_family", "get_family", "state_dict_shapes", "state_dict_dtypes",
           "in_state_dict_order", "prunable_names", "format_version_for", "INITS"]
