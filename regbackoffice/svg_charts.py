"""Small bar charts drawn on the server as SVG (no JavaScript, nothing loaded from outside)."""

from __future__ import annotations

from markupsafe import Markup, escape

PALETTE = ("#1f6feb", "#d97706", "#b42318", "#15803d", "#7c3aed", "#0e7490")


TICKS = 4


def _nice_max(value: int) -> int:
    """A round axis maximum at or above ``value``, in ``TICKS`` whole steps (1, 2, 5 × 10ⁿ)."""
    needed = max(1, -(-value // TICKS))
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            if factor * magnitude >= needed:
                return factor * magnitude * TICKS
        magnitude *= 10


def bar_chart(
    labels: list[str], series: list[tuple[str, list[int]]], *, title: str, height: int = 220
) -> Markup:
    """Grouped vertical bars, one group per label; scales to its container's width."""
    width = 640  # one drawing size: every chart's text comes out the same size
    left, right, top, bottom = 44, 8, 24, 38
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = _nice_max(max([v for _name, values in series for v in values] or [0]))
    group_w = plot_w / max(1, len(labels))
    bar_w = min(48.0, max(2.0, group_w * 0.8 / max(1, len(series))))
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" '
        f'preserveAspectRatio="xMinYMin meet">',
        f"<title>{escape(title)}</title>",
    ]
    for i in range(TICKS + 1):  # grid lines and axis labels
        value = peak * i // TICKS
        y = top + plot_h - plot_h * i / TICKS
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#dee2e6" stroke-width="1"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#6c757d">{value}</text>'
        )
    label_every = max(1, len(labels) // 12)
    for index, label in enumerate(labels):
        x0 = left + group_w * (index + 0.5) - bar_w * len(series) / 2
        for s, (name, values) in enumerate(series):
            value = values[index]
            bar_h = plot_h * value / peak if peak else 0
            x = x0 + bar_w * s
            parts.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - bar_h:.1f}" width="{bar_w - 1:.1f}" '
                f'height="{bar_h:.1f}" fill="{PALETTE[s % len(PALETTE)]}">'
                f"<title>{escape(label)} {escape(name)}：{value}</title></rect>"
            )
        if index % label_every == 0:
            parts.append(
                f'<text x="{left + group_w * (index + 0.5):.1f}" y="{height - bottom + 16}" '
                f'text-anchor="middle" font-size="11" fill="#495057">{escape(label)}</text>'
            )
    legend_x = left
    for s, (name, _values) in enumerate(series):
        parts.append(
            f'<rect x="{legend_x}" y="6" width="10" height="10" '
            f'fill="{PALETTE[s % len(PALETTE)]}"/>'
            f'<text x="{legend_x + 14}" y="15" font-size="11" fill="#212529">{escape(name)}</text>'
        )
        legend_x += 24 + 12 * len(name)
    parts.append("</svg>")
    return Markup("".join(parts))
