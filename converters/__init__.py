"""Elastic conversion of lottery tickets across depths (the Elastic Lottery Ticket Hypothesis).

A ticket of one network becomes a ticket of a deeper (stretch) or shallower (squeeze)
network of the same family by replicating or dropping whole units (residual blocks, or
conv + BN layers for VGGs), mask and init together. Stem, classifier and unit 0 of every
stage are copied one to one. See ``docs/CONVERT.md``.

:func:`convert` is a pure ``Ticket -> Ticket`` function; :func:`convert_file` converts a file
to a file (a packed file without unpacking it: what ``ticket convert`` runs). No model is built
(shapes come from the architecture's spec, :mod:`ticketfmt.zoo.shapes`), and a packed file is
converted with numpy alone: importing this package imports neither torch nor timm.

Modules: ``registry`` (the leaf registry of family converters), ``base`` (the family hooks and
the validated :class:`Plan`), ``mapping`` (strategies and mapping strings), ``apply`` (the one
walk over a plan), ``files`` (file to file), ``resnet`` and ``vgg`` (the families), ``notation``
(the reference's single mapping string over module indices) with ``vggnfc``, ``lenet`` and
``mobilenet`` (the paper's appendix networks).

Example:
    >>> from ticketfmt import Ticket, build_model
    >>> from ticketfmt.converters import convert
    >>> r20 = Ticket.from_model(build_model("cifar_resnet20", seed=0), "cifar_resnet20")
    >>> r32 = convert(r20, "cifar_resnet32")  # interpolate: B0 B1 B1 B2 B2
    >>> r32.arch, r32.provenance["mappings"][0]
    ('cifar_resnet32', '0:0;1:1,2;2:3,4')
    >>> convert(r20, "cifar_resnet32", mapping="0:0;1:1,3;2:2,4").provenance["strategy"]  # append, verbatim
    'mapping'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# The family modules register their converters on import: the registry is complete once this package is.
from ticketfmt.converters import resnet, vgg  # noqa: F401
from ticketfmt.converters import lenet, mobilenet, vggnfc  # noqa: F401  (the paper's appendix)
from ticketfmt.converters import staged  # noqa: F401  (every staged family: ViTs, ...)
from ticketfmt.converters.apply import TRAINING_CONTRACT, apply_plan, elastic_provenance, tensor_sha256, walk_plan
from ticketfmt.converters.base import DEPTH_GAP_RATIO, FamilyConverter, Plan, plan_conversion, resolve_target
from ticketfmt.converters.files import ConvertedFile, PackedSource, SourceFile, convert_file, write_converted
from ticketfmt.converters.mapping import (DEFAULT_SQUEEZE, DEFAULT_STRETCH, SQUEEZE_STRATEGIES, STRATEGIES,
                                          STRETCH_STRATEGIES, format_mapping, format_stage, invert, parse_mapping,
                                          parse_stage)
from ticketfmt.converters.registry import get_converter, register, registered_families, unregister

if TYPE_CHECKING:
    from ticketfmt.ticket import Ticket
    from ticketfmt.zoo import ArchSpec

__all__ = ["convert", "convert_file", "plan_conversion", "apply_plan", "walk_plan", "Plan", "resolve_target",
           "SourceFile", "PackedSource", "ConvertedFile", "write_converted", "elastic_provenance", "TRAINING_CONTRACT",
           "FamilyConverter", "register", "unregister", "get_converter", "registered_families", "parse_stage",
           "parse_mapping", "format_stage", "format_mapping", "invert", "tensor_sha256", "STRATEGIES",
           "STRETCH_STRATEGIES", "SQUEEZE_STRATEGIES", "DEFAULT_STRETCH", "DEFAULT_SQUEEZE", "DEPTH_GAP_RATIO"]


def convert(ticket: Ticket, target: str | ArchSpec, strategy: str | None = None, mapping: str | None = None,
            num_classes: int | None = None, permute_copies: int | None = None, *, classifier_seed: int = 0) -> Ticket:
    """Convert ``ticket`` to the architecture ``target`` (an id such as ``resnet101`` or an ``ArchSpec``).

    Args:
        strategy: ``interpolate`` (default stretch), ``append``, ``first``, ``last`` when a stage
            grows; ``spread`` (default squeeze), ``first``, ``last`` when it shrinks.
        mapping: the reference code's mapping string instead of a strategy (``0:0;1:1,2;2:3,4``;
            stages joined by ``|``).
        num_classes: re-initialize the classifier for this many classes (seeded by
            ``classifier_seed``; its mask, if it has one, is dense). Without it the target keeps
            the source's classes.
        permute_copies: a seed: shuffle the masks of replicated copies within each tensor (the
            paper's "interpolation, random" control); init values move with their mask positions.

    The result has no trained weights (``provenance["trained_dropped"]`` says whether the source
    had some), no results, and a provenance recording the source and the mapping. Raises
    :class:`ticketfmt.errors.ConversionError` before any tensor is copied when the conversion is
    impossible or the mapping invalid.
    """
    plan = plan_conversion(ticket, target, strategy=strategy, mapping=mapping, num_classes=num_classes)
    return apply_plan(ticket, plan, permute_copies=permute_copies, classifier_seed=classifier_seed)
