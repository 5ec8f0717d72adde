"""Charts drawn on the server: the geometry of simple SVG bar charts, computed here in
plain numbers so that templates only place shapes and pages need no JavaScript.

A chart is a fixed ``viewBox`` that the page scales to its width; every bar carries its
own label (an SVG ``<title>``), and the page shows the same figures in a table too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

WIDTH = 720
BAR_HEIGHT = 22  # a horizontal bar with the gap below it
LABEL_WIDTH = 150  # room for a SKU left of horizontal bars
COLOURS = ("#2f80ed", "#1f7a4d")  # first and second series (the stylesheet's accent, ok)


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass(frozen=True)
class Tick:
    """A gridline of the value axis at height ``y``, with its label left of the plot."""

    y: float
    label: str
    label_x: float
    label_y: float


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)  # categories' names
    values: list[Label] = field(default_factory=list)  # figures beside bars
    # The plot's corners, for the axis lines.
    left: float = 0
    top: float = 0
    right: float = 0
    bottom: float = 0


def nice_ceiling(value: float) -> int:
    """The smallest of 1, 2, 5 times a power of ten that is at least ``value`` (1 at least):
    an axis that ends on a round figure."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return int(step * power)
    return int(10 * power)  # pragma: no cover (the loop always returns)


def _ticks(maximum: int) -> list[int]:
    """Gridlines at round steps up to a ``nice_ceiling`` maximum, three to six of them."""
    step = nice_ceiling(maximum / 5)
    return list(range(0, maximum + 1, step))


def _figure(value: int) -> str:
    return f"{value:,}"


def grouped_columns(
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[int]]],
    *,
    height: int = 260,
    label_every: int = 7,
) -> Chart:
    """Vertical bars, one group per category (a day, say) with one bar per series.

    ``categories`` name the groups; ``series`` are (name, one value per category).
    Every ``label_every``-th category is written under the axis, counting back from the
    last one.
    """
    # Room on the right for the last category's label, centred under its group.
    left, right, top, bottom = 48.0, WIDTH - 24.0, 12.0, height - 28.0
    maximum = nice_ceiling(max((max(values, default=0) for _, values in series), default=0))
    slot = (right - left) / max(len(categories), 1)
    bar_width = slot * 0.8 / max(len(series), 1)
    chart = Chart(WIDTH, height, left=left, top=top, right=right, bottom=bottom)
    for tick in _ticks(maximum):
        y = round(bottom - (bottom - top) * tick / maximum, 2)
        chart.ticks.append(Tick(y, _figure(tick), left - 6, y + 4))
    for index, category in enumerate(categories):
        start = left + slot * index + slot * 0.1
        for number, (name, values) in enumerate(series):
            value = values[index]
            bar_height = (bottom - top) * value / maximum
            chart.bars.append(
                Bar(
                    round(start + bar_width * number, 2),
                    round(bottom - bar_height, 2),
                    round(bar_width, 2),
                    round(bar_height, 2),
                    COLOURS[number % len(COLOURS)],
                    f"{category}: {_figure(value)} {name}",
                )
            )
        # Counted back from the last category (today, say), which is always written.
        if (len(categories) - 1 - index) % label_every == 0:
            chart.labels.append(Label(round(left + slot * (index + 0.5), 2), bottom + 18, category))
    return chart


def horizontal_bars(items: Sequence[tuple[str, int]], *, unit: str) -> Chart:
    """One horizontal bar per (name, value), top to bottom, each with its figure; a
    name too long for the margin is shortened (the bar's title keeps it whole)."""
    top, left, right = 4.0, float(LABEL_WIDTH), WIDTH - 64.0
    bottom = top + BAR_HEIGHT * len(items)
    height = int(bottom + 4)
    maximum = nice_ceiling(max((value for _, value in items), default=0))
    chart = Chart(WIDTH, height, left=left, top=top, right=right, bottom=bottom)
    for index, (name, value) in enumerate(items):
        y = top + BAR_HEIGHT * index
        width = (right - left) * value / maximum
        chart.bars.append(
            Bar(
                left,
                y + 3,
                round(width, 2),
                BAR_HEIGHT - 6,
                COLOURS[0],
                f"{name}: {_figure(value)} {unit}",
            )
        )
        shown = name if len(name) <= 20 else f"{name[:19]}…"
        chart.labels.append(Label(left - 6, y + BAR_HEIGHT / 2 + 4, shown))
        chart.values.append(
            Label(round(left + width + 4, 2), y + BAR_HEIGHT / 2 + 4, _figure(value))
        )
    return chart
