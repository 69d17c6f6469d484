"""Block mappings of the Elastic Ticket Transformation: the reference code's strings, validation, strategies.

A mapping says, stage by stage, which source unit each target unit is copied from. It is
written as in the reference code (VITA-Group/ElasticLTH), so published experiments can be
reproduced verbatim:

- one stage: ``src:tgt[,tgt...]`` entries joined by ``;``, e.g. ``0:0;1:1,2;2:3,4``
  (ResNet-20 → ResNet-32: B0 B1 B1 B2 B2). A source unit that is not listed is dropped;
  one listed with k targets is copied k times;
- several stages: the stage strings joined by ``|`` (ImageNet ResNets: 4, VGGs: 5). CIFAR
  ResNets take one string applied to all three stages (three ``|``-separated ones work too).

Internally a stage's mapping is a :data:`StageMap`: the source unit of each target unit,
``(0, 1, 1, 2, 2)`` for the example above. This module is pure Python (no torch).

Example:
    >>> parse_stage("0:0;1:1,2;2:3,4")
    {0: [0], 1: [1, 2], 2: [3, 4]}
    >>> validate_stage(parse_stage("0:0;1:1,2;2:3,4"), 3, 5)
    (0, 1, 1, 2, 2)
    >>> format_stage((0, 1, 2, 1, 2))
    '0:0;1:1,3;2:2,4'
    >>> format_stage(strategy_stage("spread", 9, 5))
    '0:0;1:1;3:2;5:3;7:4'
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ticketfmt.errors import ConversionError

__all__ = ["StageMap", "STRATEGIES", "STRETCH_STRATEGIES", "SQUEEZE_STRATEGIES", "DEFAULT_STRETCH", "DEFAULT_SQUEEZE",
           "parse_stage", "validate_stage", "split_stages", "parse_mapping", "format_stage", "format_mapping",
           "strategy_stage", "generate", "invert", "direction"]

StageMap = tuple[int, ...]
"""The source unit of each target unit of one stage (index = target unit)."""

STRETCH_STRATEGIES = ("interpolate", "append", "first", "last")
SQUEEZE_STRATEGIES = ("spread", "first", "last")
STRATEGIES = ("interpolate", "append", "spread", "first", "last")
DEFAULT_STRETCH = "interpolate"
DEFAULT_SQUEEZE = "spread"

_ENTRY = re.compile(r"\s*(\d+)\s*:\s*(\d+(?:\s*,\s*\d+)*)\s*")


def _where(stage_label: str | None) -> str:
    return f"{stage_label}: " if stage_label else ""


def parse_stage(text: str, stage_label: str | None = None) -> dict[int, list[int]]:
    """Parse one stage string ``src:tgt[,tgt...];...`` into ``{src: [tgt, ...]}`` (syntax only).

    Raises :class:`ConversionError` naming the stage and the entry when the syntax is wrong
    or a source unit is listed twice.
    """
    where = _where(stage_label)
    if not text.strip():
        raise ConversionError(f"{where}the mapping is empty",
                              fix="write it as SRC:TGT[,TGT...] entries joined by ';', e.g. 0:0;1:1,2;2:3,4")
    out: dict[int, list[int]] = {}
    first_entry: dict[int, int] = {}
    for n, entry in enumerate(text.split(";"), start=1):
        m = _ENTRY.fullmatch(entry)
        if not m:
            what = "is empty" if not entry.strip() else f"({entry.strip()!r}) is not SRC:TGT[,TGT...]"
            raise ConversionError(f"{where}entry {n} {what} in {text!r}",
                                  fix="write each entry as a source unit, ':', and target units joined by ',' "
                                      "(e.g. 1:1,2); join entries with ';' and no trailing ';'")
        src = int(m.group(1))
        if src in out:
            raise ConversionError(f"{where}source unit {src} is listed twice (entries {first_entry[src]} and {n} "
                                  f"of {text!r})", fix=f"list every source unit once, with all its targets: "
                                                       f"{src}:{','.join(map(str, out[src]))},...")
        out[src] = [int(t) for t in m.group(2).split(",")]
        first_entry[src] = n
    return out


def validate_stage(entries: dict[int, list[int]], n_src: int, n_tgt: int, stage_label: str | None = None,
                   source_name: str = "the source", target_name: str = "the target",
                   fixed_first: bool = True) -> StageMap:
    """Check a parsed stage mapping against the unit counts and turn it into a :data:`StageMap`.

    Rules: source and target units in range; unit 0 (the downsampling unit) maps to target
    unit 0 and to nothing else (unless ``fixed_first`` is False: a stage of identical units,
    such as the hidden layers of a VGG's classifier); every target unit is written exactly once.
    """
    where = _where(stage_label)
    text = _format_entries(entries)
    for src, tgts in entries.items():
        if not 0 <= src < n_src:
            raise ConversionError(f"{where}entry '{_entry(src, tgts)}': source unit {src} does not exist "
                                  f"({source_name} has units 0..{n_src - 1} here)",
                                  fix=f"use source units 0..{n_src - 1}")
        for t in tgts:
            if not 0 <= t < n_tgt:
                raise ConversionError(f"{where}entry '{_entry(src, tgts)}': target unit {t} does not exist "
                                      f"({target_name} has units 0..{n_tgt - 1} here)",
                                      fix=f"use target units 0..{n_tgt - 1}")
    if fixed_first and entries.get(0) != [0]:
        got = f"0:{','.join(map(str, entries[0]))}" if 0 in entries else "no entry for source unit 0"
        raise ConversionError(f"{where}unit 0 (the downsampling unit) must be copied one to one as '0:0', got {got} "
                              f"in {text!r}", fix="start the stage's mapping with 0:0 and map no other unit to 0")
    writer: dict[int, int] = {}
    for src, tgts in sorted(entries.items()):
        for t in tgts:
            if t in writer:
                who = (f"source unit {writer[t]} and again by {src}" if writer[t] != src
                       else f"source unit {src} twice")
                raise ConversionError(f"{where}target unit {t} is written by {who} in {text!r}",
                                      fix="every target unit must come from exactly one source unit")
            writer[t] = src
    missing = [t for t in range(n_tgt) if t not in writer]
    if missing:
        units = ", ".join(map(str, missing))
        hint = ""
        if n_src > 1 or n_tgt == 1:
            d = direction(n_src, n_tgt)
            default = DEFAULT_STRETCH if d == "stretch" else DEFAULT_SQUEEZE
            given = format_stage(strategy_stage(default, n_src, n_tgt, fixed_first=fixed_first))
            hint = f" (the {default} strategy gives {given!r})"
        raise ConversionError(f"{where}target unit{'s' if len(missing) > 1 else ''} {units} "
                              f"{'are' if len(missing) > 1 else 'is'} not written by {text!r}: "
                              f"{target_name} has {n_tgt} units here", fix=f"map a source unit to every target unit "
                                                                            f"0..{n_tgt - 1}{hint}")
    return tuple(writer[t] for t in range(n_tgt))


def _entry(src: int, tgts: Sequence[int]) -> str:
    return f"{src}:{','.join(map(str, tgts))}"


def _format_entries(entries: dict[int, list[int]]) -> str:
    return ";".join(_entry(s, t) for s, t in entries.items())


def split_stages(text: str, n_stages: int, one_for_all: bool = False, arch_label: str = "this architecture",
                 example: str | None = None) -> list[str]:
    """Split a mapping into its stage strings; with ``one_for_all`` a single string serves every stage."""
    parts = text.split("|")
    if len(parts) == 1 and one_for_all:
        return parts * n_stages
    if len(parts) != n_stages:
        also = " (or one string for all of them)" if one_for_all else ""
        eg = f", e.g. {example!r}" if example else ""
        raise ConversionError(f"the mapping has {len(parts)} stage string{'s' if len(parts) != 1 else ''} but "
                              f"{arch_label} needs {n_stages}{also}",
                              fix=f"give one string per stage, first stage first, joined by '|'{eg}")
    return parts


def parse_mapping(text: str, source_stages: Sequence[int], target_stages: Sequence[int], one_for_all: bool = False,
                  stage_labels: Sequence[str] | None = None, source_name: str = "the source",
                  target_name: str = "the target", arch_label: str | None = None,
                  example: str | None = None, fixed_first: Sequence[bool] | None = None) -> list[StageMap]:
    """Parse and validate a whole mapping string against the unit counts of source and target.

    ``fixed_first[s]`` False: unit 0 of stage ``s`` is like the others (see :func:`validate_stage`).
    """
    n = len(source_stages)
    if len(target_stages) != n:
        raise ConversionError(f"{source_name} has {n} stages and {target_name} {len(target_stages)}",
                              fix="convert within one family: the number of stages never changes")
    labels = list(stage_labels) if stage_labels else [f"stage {i + 1}" for i in range(n)]
    parts = split_stages(text, n, one_for_all, arch_label or target_name, example)
    out = []
    for s, part in enumerate(parts):
        label = f"mapping for {labels[s]}"
        out.append(validate_stage(parse_stage(part, label), source_stages[s], target_stages[s], label,
                                  source_name, target_name, fixed_first[s] if fixed_first else True))
    return out


def format_stage(stage_map: Sequence[int]) -> str:
    """The reference-code string of a :data:`StageMap`: sources in order, each with its targets."""
    by_src: dict[int, list[int]] = {}
    for t, s in enumerate(stage_map):
        by_src.setdefault(s, []).append(t)
    return ";".join(_entry(s, by_src[s]) for s in sorted(by_src))


def format_mapping(stage_maps: Sequence[Sequence[int]], one_for_all: bool = False) -> str:
    """Stage strings joined by ``|`` (a single string when ``one_for_all`` and all stages agree)."""
    parts = [format_stage(m) for m in stage_maps]
    if one_for_all and len(set(parts)) == 1:
        return parts[0]
    return "|".join(parts)


def direction(n_src: int, n_tgt: int) -> str:
    """``stretch``, ``squeeze`` or ``same`` for a stage going from ``n_src`` to ``n_tgt`` units."""
    return "stretch" if n_tgt > n_src else "squeeze" if n_tgt < n_src else "same"


def _spread_counts(k: int, total: int) -> list[int]:
    # How many copies each of k blocks gets, `total` in all, extras to the earliest blocks.
    base, extra = divmod(total, k)
    return [base + (1 if i < extra else 0) for i in range(k)]


def strategy_stage(strategy: str, n_src: int, n_tgt: int, stage_label: str | None = None,
                   fixed_first: bool = True) -> StageMap:
    """The :data:`StageMap` of one stage under a strategy (unit 0 always maps to unit 0 when ``fixed_first``).

    With ``fixed_first=False`` (a stage of identical units) the strategies act on every unit
    alike, B0 included: interpolate from 2 to 4 units is B0 B0 B1 B1, spread from 4 to 1 is B0.

    Stretch (``n_tgt > n_src``), over the non-downsampling blocks B1..Bk:
      - ``interpolate``: each block repeated in place, B0 B1 B1 B2 B2 (extra copies to the earliest);
      - ``append``: the blocks repeated as a sequence, B0 B1 B2 B1 B2;
      - ``first`` / ``last``: only B1 / only Bk replicated.
    Squeeze (``n_tgt < n_src``), keeping K of the k blocks:
      - ``spread``: evenly spaced, starting at B1 (B1 B3 B5 B7 of B1..B8);
      - ``first``: B1..BK; ``last``: the last K blocks (drops the early ones: a control).
    """
    where = _where(stage_label)
    if not fixed_first:
        return _free_stage(strategy, n_src, n_tgt, stage_label)
    k, big_k = n_src - 1, n_tgt - 1
    if n_tgt == n_src:
        return tuple(range(n_tgt))
    if n_tgt > n_src:
        if strategy not in STRETCH_STRATEGIES:
            raise ConversionError(f"{where}strategy {strategy!r} squeezes, but this stage stretches from {n_src} to "
                                  f"{n_tgt} units", fix=f"use one of {', '.join(STRETCH_STRATEGIES)}")
        if k == 0:
            raise ConversionError(f"{where}the source has only unit 0 here (the unit that downsamples or changes the "
                                  f"width), which cannot be replicated to make {n_tgt} units",
                                  fix="convert from a source with at least two units in this stage")
        if strategy == "interpolate":
            out = [0]
            for i, c in enumerate(_spread_counts(k, big_k)):
                out += [i + 1] * c
            return tuple(out)
        if strategy == "append":
            return (0,) + tuple(1 + (j % k) for j in range(big_k))
        extra = big_k - k
        if strategy == "first":
            return (0,) + (1,) * (extra + 1) + tuple(range(2, n_src))
        return tuple(range(0, n_src - 1)) + (n_src - 1,) * (extra + 1)
    if strategy not in SQUEEZE_STRATEGIES:
        raise ConversionError(f"{where}strategy {strategy!r} stretches, but this stage squeezes from {n_src} to "
                              f"{n_tgt} units", fix=f"use one of {', '.join(SQUEEZE_STRATEGIES)}")
    if strategy == "spread":
        return (0,) + tuple(1 + (i * k) // big_k for i in range(big_k))
    if strategy == "first":
        return tuple(range(n_tgt))
    return (0,) + tuple(range(n_src - big_k, n_src))


def _free_stage(strategy: str, n_src: int, n_tgt: int, stage_label: str | None) -> StageMap:
    """A strategy over a stage whose unit 0 is like the others: a fixed virtual unit in front, then dropped."""
    if n_src == 0 and n_tgt > 0:
        raise ConversionError(f"{_where(stage_label)}the source has no unit here to replicate into {n_tgt}",
                              fix="convert from a source with at least one unit in this stage")
    if n_src == n_tgt:
        return tuple(range(n_tgt))
    return tuple(i - 1 for i in strategy_stage(strategy, n_src + 1, n_tgt + 1, stage_label)[1:])


def generate(strategy: str | None, source_stages: Sequence[int], target_stages: Sequence[int],
             stage_labels: Sequence[str] | None = None,
             fixed_first: Sequence[bool] | None = None) -> tuple[list[StageMap], list[str]]:
    """Per-stage maps for a strategy, and the strategy each stage used.

    ``None`` picks the defaults: ``interpolate`` where a stage stretches, ``spread`` where it
    squeezes. A named strategy applies to the stages of its direction (``first``/``last``
    to both); stages of the other direction use that direction's default. A strategy that
    fits none of the stages that change depth is an error. ``fixed_first`` as in :func:`parse_mapping`.
    """
    if strategy is not None and strategy not in STRATEGIES:
        raise ConversionError(f"unknown strategy {strategy!r}",
                              fix=f"use one of {', '.join(STRATEGIES)} (stretch: {', '.join(STRETCH_STRATEGIES)}; "
                                  f"squeeze: {', '.join(SQUEEZE_STRATEGIES)}), or give --mapping")
    labels = list(stage_labels) if stage_labels else [f"stage {i + 1}" for i in range(len(source_stages))]
    dirs = [direction(a, b) for a, b in zip(source_stages, target_stages, strict=True)]
    changing = {d for d in dirs if d != "same"}
    if strategy is not None and changing:
        ok: set[str] = set()
        if "stretch" in changing:
            ok |= set(STRETCH_STRATEGIES)
        if "squeeze" in changing:
            ok |= set(SQUEEZE_STRATEGIES)
        if strategy not in ok:
            does = "squeezes" if strategy in SQUEEZE_STRATEGIES else "stretches"
            only = "stretches" if changing == {"stretch"} else "squeezes"
            fit = sorted(ok, key=STRATEGIES.index)
            raise ConversionError(f"strategy {strategy!r} {does}, but this conversion only {only}",
                                  fix=f"use one of {', '.join(fit)}, or give --mapping")
    maps, used = [], []
    for s, (a, b) in enumerate(zip(source_stages, target_stages, strict=True)):
        d = dirs[s]
        if d == "same":
            name = "identity"
        elif d == "stretch":
            name = strategy if strategy in STRETCH_STRATEGIES else DEFAULT_STRETCH
        else:
            name = strategy if strategy in SQUEEZE_STRATEGIES else DEFAULT_SQUEEZE
        free = fixed_first is not None and not fixed_first[s]
        maps.append(tuple(range(b)) if d == "same" else strategy_stage(name, a, b, labels[s], fixed_first=not free))
        used.append(name)
    return maps, used


def invert(stage_maps: Sequence[Sequence[int]]) -> list[StageMap]:
    """The squeeze that undoes a stretch: each source unit taken back from its first copy.

    Only defined when the mapping keeps every source unit (a stretch or an identity).

    Example:
        >>> invert([(0, 1, 1, 2, 2)])
        [(0, 1, 3)]
    """
    out = []
    for s, m in enumerate(stage_maps):
        n_src = max(m) + 1 if m else 0
        first: dict[int, int] = {}
        for t, src in enumerate(m):
            first.setdefault(src, t)
        if sorted(first) != list(range(n_src)):
            lost = [i for i in range(n_src) if i not in first]
            raise ConversionError(f"stage {s + 1}: the mapping drops source unit(s) {lost}, so it has no inverse",
                                  fix="only mappings that keep every source unit (stretches) can be inverted")
        out.append(tuple(first[i] for i in range(n_src)))
    return out
