"""The reference's single mapping string over module indices, for the families that write one.

For ResNets and the CIFAR VGG the reference code (VITA-Group/ElasticLTH) writes one string per
stage over unit numbers (:mod:`ticketfmt.converters.mapping`). For the networks of the paper's
appendix it writes *one* string whose numbers are the indices of the modules it converts:

- ``cifar_vggnfc``: the ``classifier`` Sequential's indices, where the Linear layers sit at
  0, 2, 4, ... (a ReLU between them): 3 → 5 FC layers is ``0:0,2;2:4,6``;
- ``mnist_lenet``: the ``fc_layers`` indices (every hidden Linear layer): ``0:0;1:1,2;2:3``
  inserts a copy of the 300-wide layer 1 of ``mnist_lenet_300_300_100``;
- ``cifar_mobilenetv1``: the ``layers_part2`` indices (the stride-1 512-channel blocks).

A family gives its :class:`Notation` (index → ``(stage, unit)``) through
:meth:`FamilyConverter.notation`; :func:`parse_notation` turns such a string into per-stage
maps (stages the string does not address are kept as they are) and :func:`format_notation`
writes per-stage maps back, so the plan records and prints the string the reference takes.

Example:
    >>> n3 = Notation({0: (0, 0), 2: (0, 1)}, "classifier.{i}")
    >>> n5 = Notation({0: (0, 0), 2: (0, 1), 4: (0, 2), 6: (0, 3)}, "classifier.{i}")
    >>> parse_notation("0:0,2;2:4,6", n3, n5, (2,), (4,), (False,), ["classifier"])
    [(0, 0, 1, 1)]
    >>> format_notation([(0, 0, 1, 1)], n3, n5)
    '0:0,2;2:4,6'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ticketfmt.errors import ConversionError

from ticketfmt.converters.mapping import StageMap, parse_stage

__all__ = ["Notation", "parse_notation", "format_notation"]


@dataclass(frozen=True)
class Notation:
    """What the numbers of a family's single mapping string name: ``units[index] = (stage, unit)``.

    ``what`` is the module an index names, with ``{i}`` for the index (``classifier.{i}``), for messages.
    """

    units: Mapping[int, tuple[int, int]]
    what: str

    @property
    def stages(self) -> set[int]:
        """The stages the string addresses (the others are copied as they are)."""
        return {s for s, _ in self.units.values()}

    def index_list(self) -> str:
        return ", ".join(map(str, sorted(self.units))) or "none"


def _unit(notation: Notation, index: int, side: str, name: str) -> tuple[int, int]:
    if index not in notation.units:
        raise ConversionError(f"the mapping names {notation.what.format(i=index)} of {side} {name}, which is not a "
                              f"layer it converts", fix=f"use the indices {notation.index_list()} "
                                                        f"({notation.what.format(i='N')}) of {name}")
    return notation.units[index]


def parse_notation(text: str, source: Notation, target: Notation, source_stages: Sequence[int],
                   target_stages: Sequence[int], fixed_first: Sequence[bool], stage_labels: Sequence[str],
                   source_name: str = "the source", target_name: str = "the target") -> list[StageMap]:
    """The per-stage maps of a reference mapping string, checked in the string's own indices.

    Rules (as :func:`~ticketfmt.converters.mapping.validate_stage`'s): every index names a layer
    the family converts, in the same stage on both sides; every target layer is written once;
    where unit 0 of a stage changes the width (``fixed_first``) it is copied one to one.
    """
    if "|" in text:
        raise ConversionError(f"the mapping {text!r} has stage strings joined by '|', but {target_name} takes one "
                              f"string over {target.what.format(i='N')}",
                              fix=f"write SRC:TGT[,TGT...] entries over the indices {target.index_list()}")
    writer: dict[int, int] = {}  # target index -> source index
    for src, tgts in parse_stage(text, "mapping").items():
        s, _ = _unit(source, src, "the source", source_name)
        for t in tgts:
            ts, _ = _unit(target, t, "the target", target_name)
            if ts != s:
                raise ConversionError(f"entry '{src}:{t}' maps {source.what.format(i=src)} ({stage_labels[s]}) to "
                                      f"{target.what.format(i=t)} ({stage_labels[ts]}): their shapes differ",
                                      fix="map each layer to a layer of the same width")
            if t in writer:
                raise ConversionError(f"{target.what.format(i=t)} of {target_name} is written twice in {text!r} (by "
                                      f"{writer[t]} and {src})", fix="write every target layer exactly once")
            writer[t] = src
    missing = [t for t in sorted(target.units) if t not in writer]
    if missing:
        raise ConversionError(f"the mapping {text!r} writes nothing into {target.what.format(i=missing[0])} of "
                              f"{target_name} ({stage_labels[target.units[missing[0]][0]]})",
                              fix=f"map a source layer to every target index {target.index_list()}")
    maps = [tuple(range(b)) for b in target_stages]  # the stages the string does not address stay as they are
    for t, src in writer.items():
        (s, j), (_, i) = target.units[t], source.units[src]
        if fixed_first[s] and (i == 0) != (j == 0):
            first = next(k for k, u in source.units.items() if u == (s, 0))
            place = next(k for k, u in target.units.items() if u == (s, 0))
            raise ConversionError(f"{source.what.format(i=first)} of {source_name} changes the width "
                                  f"({stage_labels[s]}): it is copied one to one, and nothing else is mapped to its "
                                  f"place", fix=f"write '{first}:{place}' and map the other layers elsewhere")
        maps[s] = maps[s][:j] + (i,) + maps[s][j + 1:]
    return [m if s in target.stages else tuple(range(len(m))) for s, m in enumerate(maps)]


def format_notation(stage_maps: Sequence[Sequence[int]], source: Notation, target: Notation) -> str:
    """The reference mapping string of per-stage maps: each source index with its target indices, in order."""
    src_index = {u: i for i, u in source.units.items()}
    tgt_index = {u: i for i, u in target.units.items()}
    entries: dict[int, list[int]] = {}
    for s, stage_map in enumerate(stage_maps):
        if s not in target.stages:
            continue
        for j, i in enumerate(stage_map):
            entries.setdefault(src_index[(s, i)], []).append(tgt_index[(s, j)])
    return ";".join(f"{i}:{','.join(map(str, sorted(t)))}" for i, t in sorted(entries.items()))
