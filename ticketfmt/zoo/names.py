"""Architecture names as people type them: aliases, "did you mean" suggestions and glob filters.

:func:`normalize` maps the obvious spellings of a named architecture (``ResNet50``,
``resnet-50``, ``VGG16-BN``, ``CIFAR-ResNet-20``, ``TIMM/ResNet50``) to the zoo's id grammar;
:func:`did_you_mean` proposes the closest named ids for a typo (``resnt50``); :func:`matches`
is the glob filter of ``ticket models 'resnet*'`` (as ``timm.list_models('resnet*')``).

Only the registry is imported here (the named ids of the registered families), so
:mod:`ticketfmt.zoo.base` can use this module without an import cycle.

Example:
    >>> normalize("ResNet-50"), normalize("torchvision/VGG16-BN"), normalize("cifar_resnet-3-3-3")
    ('resnet50', 'torchvision/vgg16_bn', 'cifar_resnet-3-3-3')
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ticketfmt.zoo.registry import FAMILIES

__all__ = ["normalize", "did_you_mean", "unknown_arch_fix", "matches", "named_ids"]

# A named architecture with separators or capitals: [cifar] resnet|vgg <depth> [bn]. A single number after
# the family word is never a blocks-per-stage list (those have 3, 4 or 5 counts), so this cannot shadow one.
_NAMED = re.compile(r"(cifar[-_ ]?)?(resnet|vgg)[-_ ]?(\d+)(?:[-_ ]?(bn))?")


def normalize(arch: str) -> str:
    """The zoo's spelling of ``arch``: lower case, ``resnet-50`` → ``resnet50``, ``vgg16-bn`` → ``vgg16_bn``.

    Anything that is not an alias of a named architecture comes back lower-cased and stripped,
    so the id grammar (``resnet_basic-2-3-4-3``) is untouched.

    Example:
        >>> normalize("CIFAR-ResNet-20"), normalize("vgg_16bn"), normalize("Timm/ResNet50")
        ('cifar_resnet20', 'vgg16_bn', 'timm/resnet50')
    """
    text = arch.strip().lower()
    library, sep, name = text.rpartition("/")
    m = _NAMED.fullmatch(name)
    if m:
        cifar, family, depth, bn = m.groups()
        name = f"{'cifar_' if cifar else ''}{family}{depth}{'_bn' if bn else ''}"
    return f"{library}{sep}{name}"


def named_ids() -> list[str]:
    """Every named id of the registered families, with its library prefix and, where it has one, without.

    Example:
        >>> "timm/resnet50" in named_ids() and "resnet50" in named_ids()
        True
    """
    ids = [i for family in FAMILIES.values() for i in family.named_ids()]
    bare = [i.split("/", 1)[1] for i in ids if "/" in i]
    return list(dict.fromkeys(ids + bare))


def did_you_mean(arch: str, candidates: Iterable[str] | None = None, n: int = 3) -> list[str]:
    """The closest ``candidates`` (default: :func:`named_ids`) to a mistyped name, best first.

    Example:
        >>> did_you_mean("resnt50")
        ['resnet50', 'resnet152', 'resnet101']
        >>> did_you_mean("timm/resnet-5o")[0]
        'timm/resnet50'
    """
    import difflib  # only on an error path: not paid by every command

    text = normalize(arch)
    pool = list(candidates) if candidates is not None else named_ids()
    if "/" not in text:  # a bare name is compared with bare names
        pool = [c for c in pool if "/" not in c]
    return difflib.get_close_matches(text, pool, n=n, cutoff=0.6)


def unknown_arch_fix(arch: str) -> str:
    """The fix of an "unknown architecture" error: the closest named ids, then where the zoo is listed.

    Example:
        >>> unknown_arch_fix("resnt50")
        'did you mean resnet50? (`ticket models` lists the zoo; any depth works, e.g. resnet_basic-2-3-4-3)'
    """
    close = did_you_mean(arch, n=1)
    if close:
        return f"did you mean {close[0]}? (`ticket models` lists the zoo; any depth works, e.g. resnet_basic-2-3-4-3)"
    return ("run `ticket models` to list the zoo (e.g. cifar_resnet20, resnet50, torchvision/vgg16_bn, cifar_vgg16; "
            "any depth works, e.g. resnet_basic-2-3-4-3)")


def matches(pattern: str, arch_id: str) -> bool:
    """Whether the glob ``pattern`` matches an id, with or without its library prefix (case-insensitive).

    As ``timm.list_models``: ``resnet*`` matches ``timm/resnet50`` and ``torchvision/resnet50``;
    ``torchvision/*`` matches every torchvision id.

    Example:
        >>> matches("resnet*", "torchvision/resnet50"), matches("*_bn", "timm/vgg16_bn"), matches("vgg*", "cifar_vgg11")
        (True, True, False)
    """
    import fnmatch

    pat = pattern.strip().lower()
    ident = arch_id.lower()
    return fnmatch.fnmatchcase(ident, pat) or fnmatch.fnmatchcase(ident.split("/", 1)[-1], pat)
