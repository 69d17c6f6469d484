"""What a ticket repo tells other libraries: ``config.json`` (timm's format) and the safetensors index.

``config.json`` is written in timm's own layout (``architecture``, ``num_classes``,
``pretrained_cfg``), so ``timm.create_model("hf-hub:USER/REPO")`` reads it: it builds the ticket's
architecture when timm knows it (``timm/resnet50``, ...) with the ticket's number of classes and
preprocessing (mean, std, input size, crop). An architecture timm does not have is named by its
ticketfmt id (``cifar_resnet20``, ``torchvision/vgg16``), which timm refuses by name ("Unknown
model") instead of silently building a different network. Everything ticketfmt-specific lives
under the ``"ticketfmt"`` key, which timm ignores (only the nested ``pretrained_cfg`` layout lets
it: timm turns every top-level key of the flat layout into a ``PretrainedCfg`` argument, which
is how a ``library_name`` key broke it).

The weights are a ticket (masks plus rewind weights), not a plain state dict, so timm's
``pretrained=True`` has nothing to load; ``Ticket.from_pretrained(...).build_model()`` gives the
masked network.

``model.safetensors.index.json`` names ``ticket.safetensors`` as the repo's safetensors weights
(the Hub's sharded-checkpoint index), so ``HfApi.get_safetensors_metadata`` and the Hub's model
page read the ticket's tensors while ``model.safetensors`` stays free for a library's own
weights (the name timm and transformers load as a plain state dict).

Example:
    >>> config = config_dict(ticket, sha256)  # doctest: +SKIP
    >>> config["architecture"], config["pretrained_cfg"]["mean"]  # doctest: +SKIP
    ('resnet50', [0.485, 0.456, 0.406])
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ticketfmt.ticket import Ticket
    from ticketfmt.zoo import ArchSpec

__all__ = ["CONFIG_FILE", "INDEX_FILE", "WEIGHTS_FILE", "config_dict", "preprocessing", "timm_architecture",
           "is_ticketfmt_config", "index_dict", "is_ticketfmt_index", "read_json"]

CONFIG_FILE = "config.json"
INDEX_FILE = "model.safetensors.index.json"
"""The Hub's safetensors index: written pointing at the ticket file, unless the repo has its own weights."""
WEIGHTS_FILE = "model.safetensors"
"""Another library's weights file name: a repo holding it gets no index (its weights are the repo's)."""
SMALL_INPUT = 64  # networks up to this side are evaluated on the images as they are (ticketfmt.data.pipeline)


def timm_architecture(spec: ArchSpec) -> str:
    """The ``architecture`` of ``config.json``: timm's model name when timm builds this very network, else the id.

    Example:
        >>> from ticketfmt.zoo import get_arch
        >>> timm_architecture(get_arch("resnet50")), timm_architecture(get_arch("cifar_resnet20"))  # doctest: +SKIP
        ('resnet50', 'cifar_resnet20')
    """
    if spec.library == "timm":
        try:
            import timm
        except ImportError:  # pragma: no cover - timm is a dependency
            return spec.id
        if timm.is_model(spec.name):
            return spec.name
    return spec.id


def _contract(provenance: Mapping[str, Any], depth: int = 0) -> dict[str, Any]:
    """The dataset and normalization a ticket trains with, read as ``ticketfmt.train.training_contract`` reads them.

    Not imported from there: :mod:`ticketfmt.train` imports the ticket module, which the Hub
    hooks must not (an import cycle). Missing fields come from ``source_provenance``; an IMP
    ticket of ticketfmt 1.0 (no ``imp_options``) was trained on the data's own statistics.
    """
    own = {k: provenance[k] for k in ("dataset", "normalize") if provenance.get(k) is not None}
    if provenance.get("method") == "imp" and "imp_options" not in provenance:
        own.setdefault("normalize", "cifar")
    source = provenance.get("source_provenance")
    if isinstance(source, Mapping) and depth < 8:
        return {**_contract(source, depth + 1), **own}
    return own


def preprocessing(ticket: Ticket) -> dict[str, Any]:
    """How to feed the network at evaluation: input size, mean, std, resize and crop (torchvision's weights
    metadata has the same), from the data and normalization the ticket was trained and verified with.

    A network of at most 64 px is evaluated on the images as they are (no resize, no crop); larger
    ones resize the shorter side to ``size / 0.875`` and center-crop ``size`` (256 then 224).

    Example:
        >>> preprocessing(ticket)["mean"]  # doctest: +SKIP
        [0.485, 0.456, 0.406]
    """
    from ticketfmt.data import get_spec, normalization
    from ticketfmt.errors import TicketError

    contract = _contract(ticket.provenance)
    latest = next((r for r in reversed(ticket.results) if isinstance(r, dict) and r.get("dataset")), {})
    dataset = contract.get("dataset") or latest.get("dataset")
    normalize = str(latest.get("normalize") or contract.get("normalize") or "reference")
    c, h, w = ticket.spec.input_size
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    try:
        if isinstance(dataset, str):
            mean, std = normalization(get_spec(dataset), normalize)
    except TicketError:  # a dataset this installation does not know: the reference normalization
        normalize = "reference"
    if len(mean) != c:  # no dataset on record for a grayscale (or other) network: the channel mean of the default
        mean, std = (sum(mean) / len(mean),) * c, (sum(std) / len(std),) * c
    small = max(h, w) <= SMALL_INPUT
    return {"input_size": [c, h, w], "mean": [float(x) for x in mean], "std": [float(x) for x in std],
            "resize": None if small else int(round(h / 0.875)), "center_crop": None if small else h,
            "crop_pct": 1.0 if small else 0.875, "interpolation": "bilinear", "normalize": normalize,
            "dataset": dataset if isinstance(dataset, str) and not dataset.startswith("imagefolder:") else None}


def config_dict(ticket: Ticket, file_sha256: str | None, ticket_file: str) -> dict[str, Any]:
    """``config.json``: timm's ``architecture`` / ``num_classes`` / ``pretrained_cfg`` and the ticket's metadata.

    Example:
        >>> config_dict(ticket, None, "ticket.safetensors")["ticketfmt"]["file"]  # doctest: +SKIP
        'ticket.safetensors'
    """
    from ticketfmt.zoo import format_version_for

    spec = ticket.spec
    pre = preprocessing(ticket)
    pretrained_cfg = {  # only PretrainedCfg fields: timm passes them to its dataclass as they are
        "input_size": pre["input_size"], "mean": pre["mean"], "std": pre["std"], "crop_pct": pre["crop_pct"],
        "crop_mode": "center", "interpolation": pre["interpolation"], "num_classes": spec.num_classes,
        "description": f"A ticketfmt lottery ticket ({ticket.sparsity:.2%} sparse): the weights are in "
                       f"{ticket_file} as masks plus rewind weights; load them with ticketfmt "
                       "(Ticket.from_pretrained).",
    }
    return {
        "architecture": timm_architecture(spec),
        "num_classes": spec.num_classes,
        "pretrained_cfg": pretrained_cfg,
        "ticketfmt": {
            "format_version": format_version_for(spec, ticket.masks),  # the file's (SPEC: the lowest that describes it)
            "file": ticket_file,
            "sha256": file_sha256,
            "encoding": ticket.encoding or "packed",
            "arch": spec.to_json(),
            "preprocessing": pre,
            "sparsity": round(ticket.sparsity, 6),
            "stage_sparsity": {k: round(v, 6) for k, v in ticket.stage_sparsity().items()},
            "sections": ["init"] + (["trained"] if ticket.trained is not None else []),
            "verified": ticket.verified,
            "provenance": ticket.provenance,
            "results": ticket.results,
        },
    }


def index_dict(ticket_file: str, tensors: Mapping[str, Any], size: int) -> dict[str, Any]:
    """``model.safetensors.index.json`` pointing every tensor of the ticket file at it.

    Example:
        >>> index_dict("ticket.safetensors", {"mask/fc.weight": None}, 10)["weight_map"]
        {'mask/fc.weight': 'ticket.safetensors'}
    """
    return {"metadata": {"total_size": int(size), "format": "ticketfmt"},
            "weight_map": {name: ticket_file for name in tensors}}


def read_json(path: str, limit: int = 10_000_000) -> Any:
    """A small JSON file's content, or None when it is missing, too large or not JSON."""
    import os

    try:
        if os.path.getsize(path) > limit:
            return None
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None


def is_ticketfmt_config(config: Any) -> bool:
    """Whether a ``config.json`` content is ticketfmt's (it has a ``"ticketfmt"`` object); else another library's."""
    return isinstance(config, dict) and isinstance(config.get("ticketfmt"), dict)


def is_ticketfmt_index(index: Any) -> bool:
    """Whether a safetensors index is ticketfmt's (``metadata.format == "ticketfmt"``)."""
    meta = index.get("metadata") if isinstance(index, dict) else None
    return isinstance(meta, dict) and meta.get("format") == "ticketfmt"
