"""Model cards for tickets on the Hugging Face Hub.

:func:`render_card` turns a :class:`~ticketfmt.ticket.Ticket` into a ``huggingface_hub.ModelCard``
from the Jinja template ``cards/templates/ticket_card.md`` (``ModelCard.from_template``):

- front matter (``ModelCardData``): ``library_name: ticketfmt``, tags (lottery-ticket, sparse,
  pruning, elastic-lottery-ticket, the architecture, the datasets), datasets (Hub dataset ids of
  the known datasets), metrics, license, ``base_model`` when the ticket (or the ticket it was
  converted or pruned from) came from the Hub, and a ``model-index`` with one ``EvalResult`` per
  (dataset, split, metric): the latest full-protocol result (:func:`benchmark_results`);
- body: what the ticket is, its provenance (IMP level and rewind, or the conversion's source,
  strategy and per-stage mapping, and every recorded key), sparsity overall / per stage / per
  layer with the density plot, the results (or a plain "no results recorded"), how to load
  it (``from_pretrained`` and plain safetensors) and the citations.

:func:`eval_result_files` gives the same benchmark results in the Hub's ``.eval_results/``
format (``huggingface_hub.EvalResultEntry``), when the installed ``huggingface_hub`` has it.

Everything shown comes from the ticket's own metadata; values are escaped for Markdown
tables, so hostile provenance strings cannot break the card. Only ticketfmt's core (and
``huggingface_hub``, ``jinja2``) is imported.

Example:
    >>> from ticketfmt.cards import render_card
    >>> card = render_card(ticket, repo_id="user/cifar_resnet56-cifar10-ticket")  # doctest: +SKIP
    >>> card.data.library_name  # doctest: +SKIP
    'ticketfmt'
"""

from __future__ import annotations

import json
import math
import re
from importlib import resources
from typing import TYPE_CHECKING, Any

from ticketfmt.metadata import ANALYSIS_SOURCES

if TYPE_CHECKING:
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    from ticketfmt.ticket import Ticket

__all__ = ["render_card", "render_card_text", "card_data", "card_context", "template_text", "base_model_of",
           "benchmark_results", "protocol_of", "eval_result_files", "hub_dataset", "EVAL_RESULTS_PREFIX",
           "DEFAULT_TEMPLATE", "DEFAULT_LICENSE", "CARD_TAGS"]

DEFAULT_TEMPLATE = "ticket_card.md"
DEFAULT_LICENSE = "apache-2.0"
CARD_TAGS = ("lottery-ticket", "sparse", "pruning", "elastic-lottery-ticket")

_HUB_DATASETS = {"cifar10": "uoft-cs/cifar10", "cifar100": "uoft-cs/cifar100", "imagenet": "ILSVRC/imagenet-1k"}
"""The datasets whose identity ticketfmt checks (class and image counts), by their Hub ids. Others (the JPEG
copy and the mini subset of CIFAR-10, image folders) are not the benchmark, and get no Hub id."""
_PRETTY_DATASETS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "imagenet": "ImageNet-1k",
                    "cifar10-jpeg": "CIFAR-10 (JPEG copy)", "cifar10-mini": "CIFAR-10 (mini subset)"}
EVAL_RESULTS_PREFIX = ".eval_results/ticketfmt-"
"""The ``.eval_results/`` files ticketfmt writes (and replaces on the next push); others are left alone."""
_TRAIN_SPLITS = ("train", "training")
_METRICS = {"top1": ("accuracy", "Top-1 accuracy"), "accuracy": ("accuracy", "Top-1 accuracy"),
            "acc": ("accuracy", "Top-1 accuracy"), "top5": ("top_5_accuracy", "Top-5 accuracy")}
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_MAX_CELL = 300


# -- small helpers -------------------------------------------------------------------------------------
def _cell(value: Any) -> str:
    """A value as one Markdown table cell: one line, pipes and HTML escaped, long values cut."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    text = " ".join(text.split())
    if len(text) > _MAX_CELL:
        text = text[:_MAX_CELL - 1] + "…"
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("`", "'")


def _code(value: Any) -> str:
    """A short value for inline code: one line, no backticks."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    text = " ".join(text.split()).replace("`", "'").replace("|", "\\|")
    return text[:_MAX_CELL]


def _text(value: Any) -> str:
    """A value inside a sentence: escaped like a cell."""
    return _cell(value)


def _num(n: int) -> str:
    return f"{n:,}"


def _pct(x: float) -> str:
    return f"{x:.2%}"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}".rstrip("0").rstrip(".") if abs(v) < 1e6 else f"{v:.4g}"
    return _cell(v)


def _fmt_result(v: Any, metric: Any) -> str:
    """A result value; accuracies above 1 are percentages (what `ticket verify` records)."""
    if _is_number(v) and str(metric).lower() in ("top1", "top5", "accuracy", "acc") and float(v) > 1:
        return f"{float(v):.2f}%"
    return _fmt_value(v)


def _result_details(r: dict[str, Any]) -> str:
    """The extra facts of a result worth a column: how much data, which run, when, where."""
    parts = []
    if _is_number(r.get("correct")) and _is_number(r.get("total")):
        parts.append(f"{r['correct']:,}/{r['total']:,} correct")
    if r.get("subset") not in (None, "", 0):
        parts.append(f"training subset {_cell(r['subset'])}")
    if r.get("source"):
        parts.append(f"by `{_code(r['source'])}`")
    if r.get("from_scratch"):
        parts.append("from scratch")
    if "seed" in r and r["seed"] is not None:
        parts.append(f"seed {_cell(r['seed'])}")
    if r.get("device"):
        parts.append(_cell(r["device"]))
    if isinstance(r.get("date"), str):
        parts.append(_cell(r["date"][:10]))
    if r.get("notes"):
        parts.append(_cell(r["notes"]))
    return "; ".join(parts)


def _flatten(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``{"a": {"b": 1}}`` -> ``[("a.b", 1)]`` (lists of scalars stay whole)."""
    if isinstance(obj, dict):
        if not obj and prefix:
            return [(prefix, {})]
        out: list[tuple[str, Any]] = []
        for k, v in obj.items():
            out += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    return [(prefix, obj)]


def _dataset_names(ticket: Ticket) -> list[str]:
    names: list[str] = []
    candidates = [ticket.provenance.get("dataset")] + [r.get("dataset") for r in ticket.results if isinstance(r, dict)]
    src = ticket.provenance.get("source_provenance")
    if isinstance(src, dict):
        candidates.append(src.get("dataset"))
    for d in candidates:
        if isinstance(d, str) and d and d not in names:
            names.append(d)
    return names


def hub_dataset(name: str) -> str | None:
    """The Hub dataset id of a ticketfmt dataset name, for the datasets whose identity is checked (else None).

    Example:
        >>> hub_dataset("cifar10"), hub_dataset("imagefolder:/data/pets"), hub_dataset("cifar10-mini")
        ('uoft-cs/cifar10', None, None)
    """
    return _HUB_DATASETS.get(str(name).lower())


def _pretty_dataset(name: str) -> str:
    if name.startswith("imagefolder:"):
        return "image folder " + name[len("imagefolder:"):].rstrip("/").rsplit("/", 1)[-1]
    return _PRETTY_DATASETS.get(name.lower(), name)


def _metric(name: Any) -> tuple[str, str]:
    key = str(name or "top1").lower()
    return _METRICS.get(key, (re.sub(r"[^\w-]+", "_", key) or "metric", str(name)))


def template_text(name: str = DEFAULT_TEMPLATE) -> str:
    """The text of a card template shipped in ``cards/templates``."""
    return resources.files("ticketfmt.cards").joinpath("templates", name).read_text(encoding="utf-8")


def base_model_of(ticket: Ticket, repo_id: str | None = None) -> str | None:
    """The Hub repo this ticket was made from, when its provenance says so (else None).

    In order: the conversion's ``source`` (``repo_id`` / ``hub_repo_id`` / ``hub``, or a path
    written ``hf://USER/NAME/...``), the Hub origin of the converted source
    (``source_provenance.hub``, recorded by ``pull`` / ``from_pretrained``), the ticket's own
    Hub origin (``hub``: it was downloaded, then pruned, re-verified or mirrored), then the same
    one conversion further back. A repo equal to ``repo_id`` (the card's own repo: a ticket
    pushed back where it came from) is not its own base model.

    Example:
        >>> base_model_of(Ticket.from_pretrained("alice/r20-ticket").replace(results=[]),
        ...               repo_id="bob/r20-ticket")  # doctest: +SKIP
        'alice/r20-ticket'
    """
    found = _base_model_from(ticket.provenance)
    return found if found and found != repo_id else None


def _hub_origin(prov: Any) -> str | None:
    origin = prov.get("hub") if isinstance(prov, dict) else None
    value = origin.get("repo_id") if isinstance(origin, dict) else None
    return value if isinstance(value, str) and _REPO_ID.fullmatch(value) else None


def _base_model_from(prov: dict[str, Any], depth: int = 0) -> str | None:
    src = prov.get("source") if isinstance(prov.get("source"), dict) else {}
    for key in ("repo_id", "hub_repo_id", "hub"):
        value = src.get(key)
        if isinstance(value, str) and _REPO_ID.fullmatch(value):
            return value
    path = src.get("path")
    if isinstance(path, str) and path.startswith("hf://"):
        parts = path[len("hf://"):].split("/")
        if len(parts) >= 2 and _REPO_ID.fullmatch("/".join(parts[:2])):
            return "/".join(parts[:2])
    source_prov = prov.get("source_provenance")
    found = _hub_origin(source_prov) or _hub_origin(prov)
    if found is None and isinstance(source_prov, dict) and depth < 4:
        found = _base_model_from(source_prov, depth + 1)
    return found


# -- which results are benchmark results -----------------------------------------------------------------
def protocol_of(record: dict[str, Any]) -> str:
    """``"full"`` or ``"reduced"``: whether a result was trained by its recipe's whole protocol.

    Records carry it (``protocol``, written by ``ticket verify``); an older record without it is
    full only when its budget is the recipe's: no training subset and the named recipe's
    epochs and batch size (not in the recipe's ``overrides``). A reduced result (a CPU check on
    a subset, a shortened schedule) is never published as the dataset's benchmark result.

    Example:
        >>> protocol_of({"protocol": "full"}), protocol_of({"subset": 8000, "recipe": {"name": "cifar_resnet"}})
        ('full', 'reduced')
    """
    stated = record.get("protocol")
    if stated in ("full", "reduced"):
        return str(stated)
    recipe = record.get("recipe")
    if record.get("subset") not in (None, 0, "") or not isinstance(recipe, dict) or not recipe.get("name"):
        return "reduced"
    overrides = recipe.get("overrides") if isinstance(recipe.get("overrides"), list) else []
    return "reduced" if {"epochs", "batch_size"} & set(map(str, overrides)) else "full"


def _is_train_split(split: Any) -> bool:
    return isinstance(split, str) and split.lower().startswith(_TRAIN_SPLITS)


def benchmark_results(ticket: Ticket) -> list[dict[str, Any]]:
    """The results the card publishes as benchmark results: one per (dataset, split, metric), the latest.

    Only full-protocol results (:func:`protocol_of`) with a numeric value, on an evaluation split
    (never a training split), of a dataset with a Hub id (:func:`hub_dataset`: its identity is
    checked), qualify; the latest recorded one of each (dataset, split, metric) is kept, in the
    order the keys first appear. These make the card's ``model-index`` and ``.eval_results/``.

    Example:
        >>> [r["value"] for r in benchmark_results(ticket)]  # doctest: +SKIP
        [91.4]
    """
    chosen: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in ticket.results:
        if not isinstance(r, dict) or not _is_number(r.get("value")) or protocol_of(r) != "full":
            continue
        if r.get("source") in ANALYSIS_SOURCES:  # an analysis of the ticket (error barrier), not a benchmark
            continue
        dataset, split = str(r.get("dataset") or ""), r.get("split")
        if hub_dataset(dataset) is None or _is_train_split(split):
            continue
        key = (dataset.lower(), str(split or ""), _metric(r.get("metric"))[0])
        chosen.pop(key, None)  # the latest one, at the place of the latest
        chosen[key] = r
    order: list[tuple[str, str, str]] = []
    for r in ticket.results:  # keys in order of first appearance
        if isinstance(r, dict):
            key = (str(r.get("dataset") or "").lower(), str(r.get("split") or ""), _metric(r.get("metric"))[0])
            if key in chosen and key not in order:
                order.append(key)
    return [chosen[k] for k in order]


def eval_result_files(ticket: Ticket, repo_id: str | None = None) -> dict[str, str]:
    """The benchmark results as ``.eval_results/`` YAML files of the Hub (``{path in repo: text}``).

    One file per (dataset, split, metric) (:func:`benchmark_results`), named
    ``.eval_results/ticketfmt-<dataset>-<split>-<metric>.yaml``, holding one
    ``huggingface_hub.EvalResultEntry`` (dataset id, task ``default``, value, date, notes with the
    split, metric and budget). Empty when the installed ``huggingface_hub`` has no such format.

    Example:
        >>> sorted(eval_result_files(ticket))  # doctest: +SKIP
        ['.eval_results/ticketfmt-cifar10-test-top1.yaml']
    """
    try:
        from huggingface_hub import EvalResultEntry, eval_result_entries_to_yaml
    except ImportError:  # huggingface_hub before 1.4: no .eval_results format
        return {}
    import yaml

    files: dict[str, str] = {}
    for r in benchmark_results(ticket):
        dataset, split, metric = str(r["dataset"]), str(r.get("split") or "test"), str(r.get("metric") or "top1")
        _, metric_name = _metric(metric)
        budget = f", {r['epochs']} epochs" if r.get("epochs") else ""
        notes = (f"{metric_name} ({'%' if float(r['value']) > 1 else 'fraction'}) on the {split} split of "
                 f"{_pretty_dataset(dataset)}: the ticket trained with its mask fixed from its rewind weights"
                 f"{budget} (ticketfmt, full protocol)")
        date = r.get("date") if isinstance(r.get("date"), str) else None
        entry = EvalResultEntry(dataset_id=str(hub_dataset(dataset)), task_id="default", value=r["value"],
                                date=date, notes=notes)
        slug = "-".join(re.sub(r"[^\w.-]+", "_", x).strip("_") or "x" for x in (dataset, split, metric))
        files[f"{EVAL_RESULTS_PREFIX}{slug}.yaml"] = yaml.safe_dump(eval_result_entries_to_yaml([entry]),
                                                                    sort_keys=False)
    return files


# -- front matter --------------------------------------------------------------------------------------
def _eval_results(ticket: Ticket) -> list[EvalResult]:
    from huggingface_hub import EvalResult

    out = []
    for r in benchmark_results(ticket):
        dataset = str(r["dataset"])
        metric_type, metric_name = _metric(r.get("metric"))
        split = r.get("split")
        out.append(EvalResult(
            task_type="image-classification", task_name="Image Classification",
            dataset_type=str(hub_dataset(dataset)), dataset_name=_pretty_dataset(dataset),
            dataset_split=str(split) if split else None,
            metric_type=metric_type, metric_value=r["value"], metric_name=metric_name))
    return out


def card_data(ticket: Ticket, repo_id: str | None = None, base_model: str | None = None,
              license: str | None = None) -> ModelCardData:  # noqa: A002 - the Hub's field name
    """The card's front matter (``model-index``: :func:`benchmark_results`; ``base_model``: :func:`base_model_of`)."""
    from huggingface_hub import ModelCardData

    spec = ticket.spec
    info = getattr(type(ticket), "_hub_mixin_info", None)
    mixin_tags = list(getattr(getattr(info, "model_card_data", None), "tags", None) or [])
    datasets = _dataset_names(ticket)
    tags: list[str] = []
    local = ["imagefolder" if d.startswith("imagefolder:") else d for d in datasets]  # no local paths in tags
    for t in [*CARD_TAGS, *mixin_tags, spec.name, spec.family, *([spec.library] if spec.library != "builtin" else []),
              *local]:
        t = re.sub(r"[^\w.-]+", "-", str(t)).strip("-")
        if t and t not in tags:
            tags.append(t)
    evals = _eval_results(ticket)
    metrics = sorted({e.metric_type for e in evals})
    hub_datasets = [d for d in (hub_dataset(n) for n in datasets) if d]
    model_name = (repo_id.split("/")[-1] if repo_id else None) or f"{spec.name}-ticket"
    return ModelCardData(
        library_name="ticketfmt",
        pipeline_tag="image-classification",
        license=license or ticket.provenance.get("license") or DEFAULT_LICENSE,
        tags=tags,
        datasets=list(dict.fromkeys(hub_datasets)) or None,
        metrics=metrics or None,
        base_model=base_model or base_model_of(ticket, repo_id=repo_id),
        model_name=model_name if evals else None,
        eval_results=evals or None,
    )


# -- body ------------------------------------------------------------------------------------------------
def _summary_of(prov: dict[str, Any], depth: int = 0) -> list[str]:
    """Sentences describing how a ticket was made, for any provenance (unknown keys go to the table)."""
    method = prov.get("method")
    lines: list[str] = []
    if method == "imp":
        lines += _imp_summary(prov)
    elif method == "elastic":
        lines += _elastic_summary(prov, depth)
    elif method == "init":
        seed = f" (seed {_text(prov['seed'])})" if "seed" in prov else ""
        lines.append(f"Started as a level-0 ticket: the dense network at initialization{seed}.")
    elif method:
        lines.append(f"Made by `{_code(method)}`.")
    lines += _pruning_summary(prov.get("pruning"))
    if not lines and prov:
        lines.append("The ticket records how it was made in the table below.")
    return lines


def _imp_summary(prov: dict[str, Any]) -> list[str]:
    """The sentences of an IMP ticket: level, rate, rewind point, data, recipe, seed; where it was imported from."""
    details = []
    if "level" in prov:
        details.append(f"level **{_text(prov['level'])}**")
    rate = prov.get("rate")
    if _is_number(rate):
        details.append(f"removing {float(rate):.0%} of the remaining weights per level, ranked globally by magnitude")
    if "rewind" in prov:
        details.append(f"weights rewound to step `{_code(prov['rewind'])}`")
    if prov.get("dataset"):
        details.append(f"trained on {_text(_pretty_dataset(str(prov['dataset'])))}")
    recipe = prov.get("recipe")
    if isinstance(recipe, dict) and (recipe.get("name") or recipe.get("source")):
        details.append(f"recipe `{_code(recipe.get('name') or recipe.get('source'))}`")
    elif isinstance(recipe, str):
        details.append(f"recipe `{_code(recipe)}`")
    if "seed" in prov:
        details.append(f"seed {_text(prov['seed'])}")
    lines = ["Found by **iterative magnitude pruning** (IMP) with rewinding ([Frankle et al., 2020](#citations))"
             + (": " + "; ".join(details) if details else "") + "."]
    imported = prov.get("imported_from")
    if isinstance(imported, dict) and imported.get("tool"):
        lines.append(f"Imported from a `{_code(imported['tool'])}` run"
                     + (f" (`{_code(imported.get('run'))}`)" if imported.get("run") else "") + ".")
    return lines


def _elastic_summary(prov: dict[str, Any], depth: int) -> list[str]:
    """The sentences of a converted ticket: its source, the transformation, the notes, the source's own story."""
    src = prov.get("source") if isinstance(prov.get("source"), dict) else {}
    facts = []
    if _is_number(src.get("sparsity")):
        facts.append(f"{float(src['sparsity']):.2%} sparse")
    if isinstance(src.get("sha256"), str):
        facts.append(f"sha256 `{_code(src['sha256'][:16])}…`")
    if src.get("path"):
        facts.append(f"file `{_code(src['path'])}`")
    hub = _base_model_from(prov)
    if hub:
        facts.append(f"on the Hub: [{hub}](https://huggingface.co/{hub})")
    direction = prov.get("direction")
    how = {"stretch": "stretching (replicating blocks)", "squeeze": "squeezing (dropping blocks)"}.get(
        str(direction), f"`{_code(direction)}`" if direction else "")
    line = (f"Converted by the **Elastic Ticket Transformation** ([Chen et al., 2021](#citations)) from a "
            f"`{_code(src.get('arch', '?'))}` ticket" + (f" ({', '.join(facts)})" if facts else ""))
    if how:
        line += f" by {how}"
    if prov.get("strategy"):
        line += f" with the `{_code(prov['strategy'])}` strategy"
    lines = [line + "."]
    notes = []
    if prov.get("num_classes_reinit"):
        notes.append("the classifier was re-initialized for a new number of classes and left dense")
    if prov.get("trained_dropped"):
        notes.append("the source's trained weights were dropped (they belong to the source network)")
    if prov.get("permute_copies") is not None:
        notes.append(f"the masks of replicated blocks were permuted at random (control, seed "
                     f"{_text(prov['permute_copies'])})")
    if notes:
        lines.append("Note: " + "; ".join(notes) + ".")
    source_prov = prov.get("source_provenance")
    if isinstance(source_prov, dict) and source_prov and depth < 2:
        inner = _summary_of(source_prov, depth + 1)
        if inner:
            lines.append("The source ticket: " + inner[0][0].lower() + inner[0][1:])
    return lines


def _pruning_summary(pruning: Any) -> list[str]:
    """One sentence per one-shot pruning step recorded in ``provenance["pruning"]``."""
    lines = []
    for step in pruning if isinstance(pruning, list) else []:
        if isinstance(step, dict):
            like = f", matching the per-layer densities of a `{_code(step['like'])}` ticket" if step.get("like") else ""
            target = f" to {float(step['sparsity']):.2%} sparsity" if _is_number(step.get("sparsity")) else ""
            lines.append(f"Pruned once with `{_code(step.get('method', '?'))}`{target}{like}"
                         + (f" (seed {_text(step['seed'])})" if "seed" in step else "") + ".")
    return lines


def _mappings(prov: dict[str, Any]) -> list[dict[str, str]]:
    maps = prov.get("mappings")
    if isinstance(maps, list):
        return [{"stage": f"stage{i + 1}", "mapping": _code(m)} for i, m in enumerate(maps)]
    if isinstance(maps, dict):
        return [{"stage": _cell(k), "mapping": _code(v)} for k, v in maps.items()]
    if isinstance(prov.get("mapping"), str):
        return [{"stage": "all", "mapping": _code(prov["mapping"])}]
    return []


def _sparsity_context(ticket: Ticket) -> dict[str, Any]:
    """Sparsity overall, per stage and per layer, formatted for the card's tables."""
    spec = ticket.spec
    density = ticket.layer_density()
    stage_acc: dict[str, list[int]] = {}
    per_layer = []
    for name, (k, n) in density.items():
        stage = spec.stage_of(name)
        acc = stage_acc.setdefault(stage, [0, 0])
        acc[0] += k
        acc[1] += n
        per_layer.append({"name": _code(name), "stage": stage, "shape": "×".join(map(str, ticket.masks[name].shape)),
                          "kept": _num(k), "total": _num(n), "density": _pct(k / n if n else 1.0)})
    stages = [{"stage": s, "kept": _num(a[0]), "total": _num(a[1]), "sparsity": _pct(1 - a[0] / a[1] if a[1] else 0)}
              for s, a in stage_acc.items()]
    kept = sum(k for k, _ in density.values())
    total = sum(n for _, n in density.values())
    return {"overall_pct": _pct(ticket.sparsity), "kept": _num(kept), "total": _num(total), "layers": len(density),
            "stages": stages, "per_layer": per_layer}


def _reduced_why(r: dict[str, Any]) -> str:
    if isinstance(r.get("protocol_note"), str) and r["protocol_note"]:
        return _cell(r["protocol_note"])
    why = []
    if r.get("subset") not in (None, 0, ""):
        why.append(f"training subset of {_cell(r['subset'])} images")
    recipe = r.get("recipe") if isinstance(r.get("recipe"), dict) else {}
    if "epochs" in (recipe.get("overrides") or []):
        why.append(f"{_cell(r.get('epochs', recipe.get('epochs', '?')))} epochs, shortened from the recipe's")
    return "; ".join(why) or "budget not recorded"


def _distinct_results(ticket: Ticket) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """The results, the same result recorded twice (IMP's own evaluation and a `verify` re-run) shown once."""
    groups: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for r in ticket.results:
        if not isinstance(r, dict):
            continue
        key = json.dumps([r.get(k) for k in ("dataset", "split", "metric", "value", "epochs", "subset", "seed")]
                         + [protocol_of(r)], sort_keys=True, default=str)
        if key in groups:
            groups[key][1].append(r)
        else:
            groups[key] = (r, [r])
    return list(groups.values())


def _results_context(ticket: Ticket) -> dict[str, Any]:
    """The results table and the sentence that says what is (or is not) claimed."""
    published = {id(r) for r in benchmark_results(ticket)}
    rows = []
    for first, same in _distinct_results(ticket):
        metric = first.get("metric", "top1")
        full = protocol_of(first) == "full"
        in_index = any(id(r) in published for r in same)
        protocol = ("full (model-index)" if in_index else "full") if full else f"reduced: {_reduced_why(first)}"
        details = _result_details(same[-1])
        if len(same) > 1:
            sources = ", ".join(dict.fromkeys(f"`{_code(r.get('source', '?'))}`" for r in same))
            details = f"recorded {len(same)} times (by {sources}); " + details
        rows.append({"dataset": _cell(_pretty_dataset(str(first.get("dataset", "?")))),
                     "split": _cell(first.get("split", "")), "metric": _cell(metric),
                     "value": _fmt_result(first.get("value", ""), metric), "epochs": _cell(first.get("epochs", "")),
                     "protocol": protocol, "other": details})
    if rows:
        n = len(rows)
        statement = (f"{n} evaluation{'s are' if n > 1 else ' is'} recorded in the ticket file, as written when "
                     "the ticket was trained with its mask held fixed and evaluated (`ticket verify` or `ticket find`): "
                     "these are the only results claimed for it. Only full-protocol results on a benchmark dataset "
                     "(the whole training set and the recipe's schedule) are published in the model-index, the "
                     "latest of each dataset, split and metric; reduced ones (a training subset, fewer epochs) are "
                     "quick checks, not the dataset's benchmark result.")
    else:
        statement = ("This ticket has not been retrained and evaluated (`ticket verify` records results in the "
                     "file), so its accuracy is unknown: treat it as unverified.")
    return {"rows": rows, "statement": statement}


def card_context(ticket: Ticket, repo_id: str | None = None, plot_path: str | None = "density.png",
                 file_size: int | None = None) -> dict[str, Any]:
    """Everything the template shows, already formatted and escaped.

    Example:
        >>> card_context(ticket, repo_id="user/r20-ticket")["sparsity"]["overall_pct"]  # doctest: +SKIP
        '59.04%'
    """
    from ticketfmt._version import __version__
    from ticketfmt.format.spec import FORMAT_VERSION

    spec = ticket.spec
    prov = ticket.provenance
    library = {"timm": "timm's", "torchvision": "torchvision's"}.get(spec.library, "ticketfmt's")
    constructor = spec.to_json().get("constructor", {})
    cls_name = str(constructor.get("class", spec.family)).rsplit(".", 1)[-1]
    rewound = str(prov.get("rewind", "0")) not in ("0", "", "None") or (
        isinstance(prov.get("source_provenance"), dict) and str(prov["source_provenance"].get("rewind", "0")) != "0")
    title_bits = [spec.name] + ([_pretty_dataset(d) for d in _dataset_names(ticket)[:1]])
    return {
        "title": _text(f"{' '.join(title_bits)} lottery ticket, {_pct(ticket.sparsity)} sparse"),
        "repo_id": repo_id or "USER/REPO",
        "arch": {"id": _code(spec.id), "library": spec.library, "num_classes": spec.num_classes,
                 "input": "×".join(map(str, spec.input_size)), "head_dense": spec.family in ("vgg", "cifar_vgg"),
                 "builder": f"{library} {cls_name}"},
        "file": {"format_version": ticket.metadata.get("format_version", FORMAT_VERSION),
                 "encoding": ticket.encoding or "packed",
                 "size": f"{file_size / 1e6:.2f} MB" if file_size else None,
                 "sections": "initial (rewind) and trained" if ticket.trained is not None else "initial (rewind)",
                 "has_trained": ticket.trained is not None},
        "provenance": {"summary": _summary_of(prov), "mappings": _mappings(prov) if prov.get("method") == "elastic"
                       else [], "rows": [{"key": _code(k), "value": _cell(v)} for k, v in _flatten(prov)],
                       "rewound": rewound},
        "sparsity": _sparsity_context(ticket),
        "plot_path": plot_path,
        "results": _results_context(ticket),
        "citation_note": ("If you use this ticket, please cite the papers behind it: the Elastic Lottery Ticket "
                          "Hypothesis (Chen et al., NeurIPS 2021), the Lottery Ticket Hypothesis (Frankle & Carbin, "
                          "ICLR 2019) and rewinding (Frankle et al., ICML 2020)."),
        "version": __version__,
    }


def render_card(ticket: Ticket, repo_id: str | None = None, base_model: str | None = None,
                license: str | None = None, plot_path: str | None = "density.png",  # noqa: A002
                template: str | None = None, file_size: int | None = None, **_ignored: Any) -> ModelCard:
    """The model card of ``ticket`` as a ``huggingface_hub.ModelCard``.

    Args:
        repo_id: where the card will live (used in the loading snippets and as ``model_name``).
        base_model: the Hub repo of the ticket this one was converted from (found in the
            provenance when it records one).
        license: the card's license (default: the provenance's ``license``, else apache-2.0).
        plot_path: the density plot's path relative to the card (None: no image).
        template: a Jinja template text instead of ``ticket_card.md``.
        file_size: the ticket file's size in bytes, to show it.

    Example:
        >>> str(render_card(ticket)).startswith("---")  # doctest: +SKIP
        True
    """
    from huggingface_hub import ModelCard

    data = card_data(ticket, repo_id=repo_id, base_model=base_model, license=license)
    context = card_context(ticket, repo_id=repo_id, plot_path=plot_path, file_size=file_size)
    return ModelCard.from_template(data, template_str=template or template_text(), **context)


def render_card_text(ticket: Ticket, **kwargs: Any) -> str:
    """:func:`render_card` as the text of ``README.md``."""
    return str(render_card(ticket, **kwargs))
