"""Every picture ticketfmt writes, drawn with matplotlib (Agg canvas, no pyplot, no global state).

One module for the CLI (``ticket info --plot``, ``ticket convert --plot``), the model cards
(``density.png``) and the benchmarks (``bench/reproduce.py``):

- :func:`density_plot`: the fraction of weights kept in each layer, horizontal bars grouped and
  coloured by stage, the overall sparsity in the title; a network with more than ``max_bars``
  prunable layers (ResNet-101/152) gets one bar per block, with a note saying so;
- :func:`conversion_plot`: the Elastic Ticket Transformation as in Fig. 2 of the paper: the
  source's blocks over the target's, one column per block coloured by its density, a line from
  each target block to the source block it was copied from;
- :func:`accuracy_plot`: accuracy against the fraction of weights remaining (log scale, as in
  the lottery-ticket literature), the dense network as a band (mean ± std), error bars offset;
- :func:`lmc_plot`: linear mode connectivity, the error along the linear path between two
  trained networks, for train and test, with each curve's instability.

matplotlib is imported only when a picture is drawn, so importing this module (and
``ticket info`` without ``--plot``) stays light. Every PNG carries its title, axis titles and
legend entries in its text metadata (``Title``, ``Description``), so what it says can be
checked without looking at pixels; the same input gives the same bytes with a given matplotlib.

Example:
    >>> from ticketfmt.cards.plot import density_plot
    >>> density_plot({"conv1.weight": (216, 432), "fc.weight": (576, 640)}, "density.png")  # doctest: +SKIP
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ticketfmt.errors import TicketError
from ticketfmt.format.atomic import atomic_write

if TYPE_CHECKING:
    from collections.abc import Iterator

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ticketfmt.zoo import ArchSpec

__all__ = ["density_plot", "conversion_plot", "accuracy_plot", "lmc_plot", "BlockDensities", "ConversionView",
           "Curve", "stage_color", "PALETTE", "DPI"]

DPI = 110
# Colour-blind-safe qualitative palette (Okabe & Ito, 2008, then two of Tol's; pale yellow last): stages and
# methods keep their colour across pictures. Ten colours and ten markers: the reproduction plots nine methods.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#882255", "#999933",
           "#F0E442")
_STEM_COLOR, _HEAD_COLOR = "#7f7f7f", "#4d4d4d"
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "p")
_STYLE = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8, "axes.spines.top": False,
          "axes.spines.right": False, "figure.dpi": DPI}
_SOFTWARE = "ticketfmt (matplotlib, Agg)"


# -- shared machinery ------------------------------------------------------------------------------------
@contextmanager
def _figure(width: float, height: float) -> Iterator[Figure]:
    """A new figure on an Agg canvas, drawn with matplotlib's defaults plus ``_STYLE`` (not the user's rc)."""
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:  # a broken install: matplotlib is one of ticketfmt's dependencies
        raise TicketError("drawing a plot needs matplotlib, which is not installed",
                          fix="pip install 'matplotlib>=3.7' (a dependency of ticketfmt)") from e
    with matplotlib.rc_context():
        matplotlib.rcdefaults()  # the same picture whatever the user's matplotlibrc says
        matplotlib.rcParams.update(_STYLE)
        fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        yield fig


def _texts(fig: Figure) -> list[str]:
    """Every non-empty text the figure shows (titles, labels, legend entries, notes), in order, once each."""
    from matplotlib.text import Text

    seen: dict[str, None] = {}
    for t in fig.findobj(Text):
        s = t.get_text().strip()
        if s and t.get_visible():
            seen.setdefault(s, None)
    return list(seen)


def _save(fig: Figure, path: str | os.PathLike[str], title: str) -> None:
    """Write ``fig`` as a PNG atomically, with its texts in the PNG metadata."""
    meta = {"Title": title, "Description": "\n".join(_texts(fig)), "Software": _SOFTWARE}
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata=meta)
    atomic_write(path, [buf.getvalue()])


def stage_color(stage: str) -> str:
    """The colour of a stage in every picture: ``stem`` and ``head`` grey, ``stageN`` the N-th palette colour.

    Example:
        >>> stage_color("stage1"), stage_color("stem")
        ('#0072B2', '#7f7f7f')
    """
    if stage == "stem":
        return _STEM_COLOR
    if stage == "head":
        return _HEAD_COLOR
    digits = "".join(c for c in stage if c.isdigit())
    return PALETTE[(int(digits) - 1) % len(PALETTE)] if digits else PALETTE[-1]


def _pct(x: float) -> str:
    return f"{100 * x:.3g}%" if x < 0.1 else f"{100 * x:.1f}%"


# -- density per layer -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Bar:
    label: str
    stage: str
    kept: int
    total: int
    layers: int = 1

    @property
    def density(self) -> float:
        return self.kept / self.total if self.total else 1.0


def _unit_of(spec: ArchSpec) -> dict[str, str]:
    """Prefix of every unit (``layer3.17.``) → its label (``layer3.17``)."""
    from ticketfmt.zoo import iter_units

    return {p: prefixes[0].rstrip(".") for _, _, prefixes in iter_units(spec) for p in prefixes}


def _bars(layers: Mapping[str, tuple[int, int]], stages: Mapping[str, str], units: Mapping[str, str] | None
          ) -> list[_Bar]:
    """One bar per layer, or (``units`` given) one per unit, in state-dict order; stem and head layers alone."""
    bars: dict[str, _Bar] = {}
    for name, (kept, total) in layers.items():
        label = next((u for p, u in (units or {}).items() if name.startswith(p)), name)
        old = bars.get(label)
        bars[label] = _Bar(label, stages.get(name, "layers"), kept + (old.kept if old else 0),
                           total + (old.total if old else 0), 1 + (old.layers if old else 0))
    return list(bars.values())


def density_plot(layers: Mapping[str, tuple[int, int]], path: str | os.PathLike[str], spec: ArchSpec | None = None,
                 *, stages: Mapping[str, str] | None = None, title: str | None = None, max_bars: int = 60) -> None:
    """Write a horizontal bar chart of the fraction of weights kept in each prunable layer.

    Args:
        layers: ``{state-dict name: (kept, total)}`` in the network's order (``Ticket.layer_density()``).
        spec: the architecture, for the stage of each layer and its blocks (else ``stages`` or none).
        stages: the stage of each layer when there is no ``spec``.
        title: instead of ``"<arch>: <sparsity> sparse (<kept> of <total> prunable weights kept)"``.
        max_bars: above this many layers, one bar per block (every layer of the block together).

    Example:
        >>> density_plot(ticket.layer_density(), "density.png", ticket.spec)  # doctest: +SKIP
    """
    if not layers:
        raise TicketError("no prunable layers to plot", fix="plot a ticket that has masks")
    stage_of = {n: spec.stage_of(n) for n in layers} if spec is not None else dict(stages or {})
    per_block = spec is not None and len(layers) > max_bars
    bars = _bars(layers, stage_of, _unit_of(spec) if per_block and spec is not None else None)
    kept, total = sum(k for k, _ in layers.values()), sum(n for _, n in layers.values())
    overall = kept / total if total else 1.0
    head = title or (f"{spec.id + ': ' if spec is not None else ''}{1 - overall:.2%} sparse "
                     f"({kept:,} of {total:,} prunable weights kept)")
    note = (f"{len(layers)} prunable layers shown as {len(bars)} bars: one per block (all its layers together); "
            "`ticket info` lists every layer" if per_block else "")
    with _figure(8.0, max(2.8, 1.6 + 0.19 * len(bars))) as fig:
        ax = fig.add_subplot()
        _draw_density(ax, bars, overall, per_block)
        fig.suptitle(head, fontsize=10)
        if note:
            ax.set_title(note, fontsize=8, loc="left", color="#444444")
        _save(fig, path, head)


def _draw_density(ax: Axes, bars: list[_Bar], overall: float, per_block: bool) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import PercentFormatter

    y = list(range(len(bars)))
    colors = [stage_color(b.stage) for b in bars]
    drawn = ax.barh(y, [b.density for b in bars], color=colors, height=0.78, edgecolor="none")
    size = 8 if len(bars) <= 40 else 7
    ax.bar_label(drawn, labels=[_pct(b.density) for b in bars], padding=2, fontsize=size - 1, color="#333333")
    ax.set_yticks(y, labels=[b.label for b in bars], fontsize=size)
    ax.set_ylim(len(bars) - 0.4, -0.6)  # first layer on top, as in the network
    ax.set_xlim(0, 1.1)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.grid(axis="x", color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.axvline(overall, color="#555555", linestyle="--", linewidth=0.8, zorder=0.9)  # behind bars and labels
    ax.set_xlabel("fraction of weights kept (density)")
    ax.set_ylabel("block (state-dict order)" if per_block else "prunable layer (state-dict order)")
    handles = [Patch(color=stage_color(s), label=s) for s in dict.fromkeys(b.stage for b in bars)]
    handles.append(Line2D([], [], color="#555555", linestyle="--", label=f"overall: {_pct(overall)} kept"))
    ax.legend(handles=handles, title="stage", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


# -- conversion ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BlockDensities:
    """The density of each unit (residual block, or conv layer of a VGG) of a ticket, stage by stage.

    Example:
        >>> from ticketfmt.zoo import get_arch
        >>> spec = get_arch("cifar_resnet8")
        >>> b = BlockDensities.of(spec, {"conv1.weight": (1, 2), "layer1.0.conv1.weight": (3, 4)})
        >>> b.units[0], b.stem
        ((0.75,), 0.5)
    """

    arch: str
    units: tuple[tuple[float | None, ...], ...]
    stem: float | None = None
    head: float | None = None
    sparsity: float = 0.0

    @classmethod
    def of(cls, spec: ArchSpec, layers: Mapping[str, tuple[int, int]]) -> BlockDensities:
        """The densities of ``spec``'s units from ``{layer: (kept, total)}`` (a ticket's ``layers``)."""
        from ticketfmt.zoo import iter_units

        acc: dict[Any, list[int]] = {}
        owner = {p: (s, j) for s, j, prefixes in iter_units(spec) for p in prefixes}
        for name, (kept, total) in layers.items():
            key = next((u for p, u in owner.items() if name.startswith(p)), spec.stage_of(name))
            a = acc.setdefault(key, [0, 0])
            a[0] += kept
            a[1] += total

        def dens(key: Any) -> float | None:
            a = acc.get(key)
            return a[0] / a[1] if a and a[1] else None

        units = tuple(tuple(dens((s, j)) for j in range(n)) for s, n in enumerate(spec.stages))
        kept, total = sum(k for k, _ in layers.values()), sum(n for _, n in layers.values())
        return cls(spec.id, units, dens("stem"), dens("head"), 1 - kept / total if total else 0.0)


@dataclass(frozen=True)
class ConversionView:
    """One target of a conversion: its block densities and, per stage, the source unit of each target unit."""

    target: BlockDensities
    stage_maps: tuple[tuple[int, ...], ...]
    label: str = ""


def conversion_plot(source: BlockDensities, targets: Sequence[ConversionView], path: str | os.PathLike[str],
                    title: str | None = None) -> None:
    """Write the conversion picture: per target, the source's blocks over the target's, linked by origin.

    Each block is a column coloured by its density (the fraction of its weights kept, printed in
    it when there is room); a line joins each target block to the source block it was copied
    from, so replicated (stretch) and dropped (squeeze) blocks show at a glance.

    Example:
        >>> view = ConversionView(BlockDensities.of(r32, r32_layers), plan.stage_maps, "interpolate")  # doctest: +SKIP
        >>> conversion_plot(BlockDensities.of(r20, r20_layers), [view], "convert.png")  # doctest: +SKIP
    """
    if not targets:
        raise TicketError("no conversion to plot", fix="give at least one target")
    for v in targets:
        if [len(m) for m in v.stage_maps] != [len(u) for u in v.target.units] or len(v.stage_maps) != len(
                source.units):
            raise TicketError(f"the stage maps of {v.target.arch} do not match its units or the source's stages",
                              fix="pass the plan's stage_maps with the densities of the same architectures")
    head = title or (f"{source.arch} → {', '.join(v.target.arch for v in targets)}: where each block comes from")
    columns = max(_columns(source, v) for v in targets)
    with _figure(min(20.0, max(7.5, 1.6 + 0.3 * columns)), 0.9 + 2.5 * len(targets)) as fig:
        axes = fig.subplots(len(targets), 1, squeeze=False)[:, 0]
        image = None
        for ax, view in zip(axes, targets):
            image = _draw_conversion(ax, source, view)
        fig.colorbar(image, ax=list(axes), label="density (fraction kept)", shrink=0.9, pad=0.01, aspect=30)
        fig.suptitle(head, fontsize=10)
        fig.supxlabel("a line joins each target block to the source block it copies (B<i> under it)\n"
                      "numbers in the blocks: % of the block's weights kept", fontsize=8, color="#444444")
        _save(fig, path, head)


def _columns(source: BlockDensities, view: ConversionView) -> int:
    outer = int(source.stem is not None) + int(source.head is not None)
    return outer + sum(max(len(a), len(b)) for a, b in zip(source.units, view.target.units))


def _layout(source: BlockDensities, target: BlockDensities) -> tuple[list[float], list[tuple[float, float, str]]]:
    """The x-centre of every stage's span, and each stage's (start, width, name); stem and head one column each."""
    spans: list[tuple[float, float, str]] = []
    x = 0.0
    if source.stem is not None:
        spans.append((x, 1.0, "stem"))
        x += 1.3
    for s, (a, b) in enumerate(zip(source.units, target.units)):
        width = float(max(len(a), len(b)))
        spans.append((x, width, f"stage{s + 1}"))
        x += width + 0.3
    if source.head is not None:
        spans.append((x, 1.0, "head"))
    return [st + w / 2 for st, w, _ in spans], spans


def _row(span: tuple[float, float, str], n: int) -> tuple[list[float], float]:
    """The x-centres of ``n`` cells spread over a span, and the cell width."""
    start, width, _ = span
    step = width / n
    return [start + step * (j + 0.5) for j in range(n)], min(0.86, 0.86 * step)


def _cell(ax: Axes, x: float, y: float, w: float, d: float | None, cmap: Any, text: bool) -> None:
    from matplotlib.patches import Rectangle

    color = cmap(d) if d is not None else "#ffffff"
    ax.add_patch(Rectangle((x - w / 2, y - 0.3), w, 0.6, facecolor=color, edgecolor="#333333", linewidth=0.5))
    if text and d is not None:
        ax.text(x, y, f"{100 * d:.0f}", ha="center", va="center", fontsize=6.5, rotation=90 if w < 0.5 else 0,
                color="white" if d < 0.55 else "black")


def _draw_conversion(ax: Axes, source: BlockDensities, view: ConversionView) -> Any:
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    cmap = colormaps["viridis"]
    target = view.target
    _, spans = _layout(source, target)
    text = _columns(source, view) <= 60
    stage_spans = [s for s in spans if s[2].startswith("stage")]
    for ys, net in ((1.0, source), (0.0, target)):
        outer = {"stem": net.stem, "head": net.head}
        for span in spans:
            if span[2] in outer:
                _cell(ax, span[0] + 0.5, ys, 0.86, outer[span[2]], cmap, text)
        for span, units in zip(stage_spans, net.units):
            xs, w = _row(span, len(units))
            for x, d in zip(xs, units):
                _cell(ax, x, ys, w, d, cmap, text)
    for span, smap, src_units in zip(stage_spans, view.stage_maps, source.units):
        src_x, _ = _row(span, len(src_units))
        tgt_x, _ = _row(span, len(smap))
        color = stage_color(span[2])
        for tx, s in zip(tgt_x, smap):
            ax.plot([src_x[s], tx], [0.7, 0.3], color=color, linewidth=0.9, alpha=0.8)
        if text:  # block numbers: each source block's index, and under each target block the source block it copies
            for j, x in enumerate(src_x):
                ax.text(x, 1.33, f"B{j}", ha="center", va="bottom", fontsize=6, color="#444444")
            for x, s in zip(tgt_x, smap):
                ax.text(x, -0.33, f"B{s}", ha="center", va="top", fontsize=6, color="#444444")
    for st, w, name in spans:
        ax.text(st + w / 2, 1.55, name, ha="center", va="bottom", fontsize=8, color=stage_color(name))
    ax.set_xlim(-0.3, spans[-1][0] + spans[-1][1] + 0.3)
    ax.set_ylim(-0.55, 1.75)
    ax.set_yticks([1.0, 0.0], labels=[f"{source.arch} (source)\n{source.sparsity:.2%} sparse",
                                      f"{target.arch}\n{target.sparsity:.2%} sparse"])
    ax.set_xticks([])
    for side in ("left", "bottom", "top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="y", length=0)
    ax.set_title(view.label or f"{source.arch} → {target.arch}", fontsize=9, loc="left")
    return ScalarMappable(norm=Normalize(0, 1), cmap=cmap)


# -- accuracy vs sparsity --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Curve:
    """One method's accuracy at several sparsities: ``points`` are ``(sparsity in [0, 1], mean, std or None)``.

    Example:
        >>> Curve("IMP", ((0.52, 29.4, 1.8), (0.77, 33.8, 0.7))).label
        'IMP'
    """

    label: str
    points: tuple[tuple[float, float, float | None], ...] = ()
    linestyle: str = "-"


def _tick_groups(remaining: list[float], tol: float = 0.15) -> list[tuple[float, str]]:
    """Ticks ``(position, label)``: values within ``tol`` (relative) of each other share one tick, whose label
    gives the group's range (``"44.2-46%\n(54-55.8% sparse)"``) so that no point is labelled with a sparsity
    it does not have."""
    groups: list[list[float]] = []
    for r in sorted(remaining, reverse=True):
        if groups and abs(math.log(groups[-1][0] / r)) < tol:
            groups[-1].append(r)
        else:
            groups.append([r])
    ticks = []
    for g in groups:
        lo, hi = min(g), max(g)
        if f"{lo:.3g}" == f"{hi:.3g}":
            label = f"{hi:.3g}%\n({100 - hi:.3g}% sparse)"
        else:
            label = f"{lo:.3g}-{hi:.3g}%\n({100 - hi:.3g}-{100 - lo:.3g}% sparse)"
        ticks.append((math.exp(sum(math.log(v) for v in g) / len(g)), label))
    return ticks


def accuracy_plot(curves: Sequence[Curve], path: str | os.PathLike[str], *,
                  dense: tuple[float, float | None] | None = None, dense_label: str = "dense", title: str = "",
                  ylabel: str = "test top-1 accuracy (%)", offset: float = 0.012) -> None:
    """Write accuracy against the fraction of weights remaining (log scale, sparser to the right).

    Each curve keeps the colour and marker of its position in ``curves`` (an empty curve keeps
    its slot), so a method looks the same in every run; the points of curve ``i`` are shifted
    sideways by ``offset`` decades per position so that error bars (± std) do not overlap; the
    dense network is a horizontal band (mean ± std).

    Example:
        >>> accuracy_plot([Curve("IMP", ((0.52, 29.4, 1.8),))], "acc.png", dense=(45.0, 1.0))  # doctest: +SKIP
    """
    drawn = [(i, c) for i, c in enumerate(curves) if c.points]
    if not drawn and dense is None:
        raise TicketError("no accuracy to plot", fix="give at least one curve with points, or the dense accuracy")
    head = title or "accuracy vs sparsity"
    with _figure(8.0, 5.2) as fig:
        ax = fig.add_subplot()
        for rank, (i, c) in enumerate(drawn):
            shift = 10 ** (offset * (rank - (len(drawn) - 1) / 2))
            pts = sorted(c.points, reverse=True)  # dense to sparse
            xs = [100 * (1 - s) * shift for s, _, _ in pts]
            ax.errorbar(xs, [m for _, m, _ in pts], yerr=[e or 0.0 for _, _, e in pts], label=c.label,
                        color=PALETTE[i % len(PALETTE)], marker=_MARKERS[i % len(_MARKERS)], markersize=5,
                        linestyle=c.linestyle, linewidth=1.4, capsize=3, elinewidth=0.9)
        if dense is not None:
            m, s = dense
            label = f"{dense_label}: {m:.2f}" + (f" ± {s:.2f}" if s else "")
            if s:
                ax.axhspan(m - s, m + s, color="#999999", alpha=0.22, linewidth=0)
            ax.axhline(m, color="#555555", linestyle="--", linewidth=1.1, label=label)
        _accuracy_axes(ax, [1 - s for _, c in drawn for s, _, _ in c.points])
        ax.set_ylabel(ylabel)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
        fig.suptitle(head, fontsize=10)
        _save(fig, path, head)


def _accuracy_axes(ax: Axes, remaining: list[float]) -> None:
    """Log-scale x axis of the weights remaining, decreasing to the right, ticked where the data are."""
    from matplotlib.ticker import FixedLocator, NullLocator

    ax.set_xscale("log")
    rs = [100 * r for r in remaining if r > 0] or [100.0]
    ticks = _tick_groups(rs)
    ax.set_xlim(max(rs) * 1.35, min(rs) / 1.35)  # reversed: sparser to the right
    ax.xaxis.set_major_locator(FixedLocator([t for t, _ in ticks]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks([t for t, _ in ticks], labels=[label for _, label in ticks])
    ax.set_xlabel("weights remaining (log scale; points of each method shifted sideways so error bars do not "
                  "overlap)")
    ax.grid(color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)


# -- linear mode connectivity ----------------------------------------------------------------------------
def lmc_plot(alphas: Sequence[float], errors: Mapping[str, Sequence[float]], path: str | os.PathLike[str], *,
             title: str = "", endpoints: tuple[str, str] = ("network A", "network B"),
             ylabel: str = "error (%)") -> None:
    """Write linear mode connectivity curves: the error along ``(1 - α) θ_A + α θ_B`` for each split.

    Each curve's legend gives its instability (Frankle et al., 2020): the largest error along the
    path minus the mean of the errors at its two ends; near zero means the two networks are
    linearly connected.

    Example:
        >>> lmc_plot([0, 0.5, 1], {"train": [5, 9, 5], "test": [10, 14, 11]}, "lmc.png")  # doctest: +SKIP
    """
    if len(alphas) < 2 or not errors:
        raise TicketError("linear mode connectivity needs at least two interpolation points and one curve",
                          fix="evaluate the path at α = 0, ..., 1")
    for split, errs in errors.items():
        if len(errs) != len(alphas):
            raise TicketError(f"the {split} curve has {len(errs)} values for {len(alphas)} values of α",
                              fix="give one error per interpolation point")
    head = title or "linear mode connectivity"
    with _figure(6.5, 4.2) as fig:
        ax = fig.add_subplot()
        for i, (split, errs) in enumerate(errors.items()):
            ends = (errs[0] + errs[-1]) / 2
            ax.plot(list(alphas), list(errs), color=PALETTE[i % len(PALETTE)], marker=_MARKERS[i % len(_MARKERS)],
                    markersize=4, label=f"{split} (instability {max(errs) - ends:+.2f})")
        ax.set_xlim(min(alphas), max(alphas))
        ax.set_xlabel(f"interpolation α (0: {endpoints[0]}, 1: {endpoints[1]})")
        ax.set_ylabel(ylabel)
        ax.grid(color="#e5e5e5", linewidth=0.6)
        ax.legend(frameon=False)
        fig.suptitle(head, fontsize=10)
        _save(fig, path, head)
