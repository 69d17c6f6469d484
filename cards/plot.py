"""A per-layer density bar chart as a PNG, drawn with Pillow (no plotting library needed).

Example:
    >>> from ticketfmt.cards.plot import density_plot
    >>> density_plot({"conv1.weight": 0.5, "fc.weight": 0.9}, "density.png", title="demo")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ticketfmt.format.atomic import atomic_write

__all__ = ["density_plot", "STAGE_COLORS"]

STAGE_COLORS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c"]


def density_plot(density: Mapping[str, float], path: str | os.PathLike[str], title: str = "",
                 stages: Mapping[str, str] | None = None) -> None:
    """Write a bar chart of the fraction of weights kept in each layer (one bar per layer, in order)."""
    import io

    from PIL import Image, ImageDraw, ImageFont

    names = list(density)
    bar_h, gap, left, right, top = 12, 3, 260, 70, 40
    width = left + 420 + right
    height = top + len(names) * (bar_h + gap) + 40
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    draw.text((10, 10), title or "fraction of weights kept per layer", fill="black", font=font)
    palette: dict[str, str] = {}
    for i, name in enumerate(names):
        y = top + i * (bar_h + gap)
        stage = stages.get(name, "") if stages else ""
        color = palette.setdefault(stage, STAGE_COLORS[len(palette) % len(STAGE_COLORS)])
        d = max(0.0, min(1.0, float(density[name])))
        draw.text((10, y), name[-40:], fill="black", font=font)
        draw.rectangle([left, y, left + 420, y + bar_h], outline="#dddddd")
        draw.rectangle([left, y, left + int(420 * d), y + bar_h], fill=color)
        draw.text((left + 425, y), f"{d:.1%}", fill="black", font=font)
    for x, label in ((left, "0"), (left + 210, "0.5"), (left + 420, "1")):
        draw.text((x - 4, height - 30), label, fill="black", font=font)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write(path, [buf.getvalue()])
