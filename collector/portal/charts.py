"""Server-generated inline SVG bar charts (no script, no external resources).

Each bar is the bucket's quantity; its estimated part is stacked on top with a hatched fill so
it stays distinguishable in print and for colour-blind readers. Every text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["Bar", "bar_chart", "nice_max"]

_W, _H = 720, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 84, 12, 16, 38
_GRID = 4


@dataclass(frozen=True, slots=True)
class Bar:
    """One bucket: ``quantity`` includes ``estimated``; ``href`` makes the bar a link.
    ``state`` (``collector.portal.consumption.BucketState``): a ``future`` bucket is empty, a
    ``no_data`` one is drawn as a dashed outline, never as a measured zero."""

    label: str
    title: str
    quantity: float
    estimated: float
    href: str | None = None
    state: str = "measured"
    compare: float | None = None  # the same bucket of the earlier period: drawn as a marker


def nice_max(value: float) -> float:
    """The smallest 1/2/2.5/5 × 10^k at or above ``value`` (1 for nothing)."""
    if not value > 0 or not math.isfinite(value):
        return 1.0
    exp = 10.0 ** math.floor(math.log10(value))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= m * exp * (1 + 1e-12):
            return m * exp
    return 10.0 * exp


def _num(v: float) -> str:
    return f"{v:.1f}"


def _tick(v: float) -> str:
    if v >= 10 and v == int(v):
        return f"{v:,.0f}"
    return f"{v:,.2f}".rstrip("0").rstrip(".")


def bar_chart(bars: Sequence[Bar], *, unit: str, chart_id: str, caption: str) -> str:
    """An ``<svg>`` of ``bars`` with a y axis in ``unit``; ``chart_id`` must be unique on the
    page (it names the hatch pattern)."""
    e = escape
    pid = f"est-{e(chart_id)}"
    top = nice_max(max((max(b.quantity, b.compare or 0.0) for b in bars), default=0.0))
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    role = "group" if any(b.href for b in bars) else "img"
    parts = [
        # bars with links are controls: the chart is then a group of them, not one image
        f'<svg class="chart" viewBox="0 0 {_W} {_H}" role="{role}" aria-label="{e(caption)}"'
        ' xmlns="http://www.w3.org/2000/svg">',
        f"<title>{e(caption)}</title>",
        f'<defs><pattern id="{pid}" width="6" height="6" patternUnits="userSpaceOnUse"'
        ' patternTransform="rotate(45)"><rect width="6" height="6" class="est-bg"/>'
        '<line x1="0" y1="0" x2="0" y2="6" class="est-line"/></pattern></defs>',
    ]
    for k in range(_GRID + 1):
        v = top * k / _GRID
        y = _TOP + plot_h - plot_h * k / _GRID
        parts.append(
            f'<line class="grid" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{_num(y)}" y2="{_num(y)}"/>'
            f'<text class="ylab" x="{_LEFT - 6}" y="{_num(y + 4)}">{e(_tick(v))}</text>'
        )
    parts.append(f'<text class="unit" x="4" y="{_TOP + 10}">{e(unit)}</text>')
    n = max(len(bars), 1)
    slot = plot_w / n
    gap = min(slot * 0.2, 4.0)
    every = max(1, math.ceil(n / 16))
    for i, b in enumerate(bars):
        x = _LEFT + i * slot + gap / 2
        w = max(slot - gap, 1.0)
        q = max(b.quantity, 0.0)
        est = min(max(b.estimated, 0.0), q)
        h_all = plot_h * q / top
        h_est = plot_h * est / top
        y_all = _TOP + plot_h - h_all
        group = [f"<title>{e(b.title)}</title>"]
        if b.state == "no_data":
            group.append(
                f'<rect class="nodata" x="{_num(x)}" y="{_num(_TOP + plot_h * 0.75)}"'
                f' width="{_num(w)}" height="{_num(plot_h * 0.25)}"/>'
            )
        if h_all - h_est > 0:
            group.append(
                f'<rect class="act" x="{_num(x)}" y="{_num(y_all + h_est)}" width="{_num(w)}"'
                f' height="{_num(h_all - h_est)}"/>'
            )
        if h_est > 0:
            group.append(
                f'<rect class="est" fill="url(#{pid})" x="{_num(x)}" y="{_num(y_all)}"'
                f' width="{_num(w)}" height="{_num(h_est)}"/>'
            )
        if b.compare is not None and b.compare > 0:
            y_c = _TOP + plot_h - plot_h * b.compare / top
            group.append(
                f'<line class="cmp" x1="{_num(x)}" x2="{_num(x + w)}" y1="{_num(y_c)}"'
                f' y2="{_num(y_c)}" data-compare="{b.compare!r}"/>'
            )
        # an invisible full-height target so empty buckets still have a tooltip and a link
        group.append(
            f'<rect class="hit" x="{_num(x)}" y="{_TOP}" width="{_num(w)}" height="{plot_h}"/>'
        )
        body = "".join(group)
        if b.href:
            body = f'<a href="{e(b.href)}">{body}</a>'
        q_attr = "" if b.state in ("future", "no_data", "not_yours") else f' data-q="{q!r}"'
        parts.append(f'<g class="bar {e(b.state)}"{q_attr}>{body}</g>')
        if i % every == 0:
            alt = " alt" if (i // every) % 2 else ""
            parts.append(
                f'<text class="xlab{alt}" x="{_num(x + w / 2)}" y="{_H - 6}">{e(b.label)}</text>'
            )
    parts.append(
        f'<line class="axis" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{_TOP + plot_h}"'
        f' y2="{_TOP + plot_h}"/></svg>'
    )
    return "".join(parts)
