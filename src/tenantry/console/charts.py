"""Charts for the console as server-rendered SVG: no chart library in the browser, no script,
readable to a screen reader through the title and a text alternative beside each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

WIDTH, BAR_HEIGHT, GAP, LABEL_WIDTH = 640, 22, 8, 230


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    note: str = ""


def bars(title: str, rows: list[Bar], color: str) -> Markup:
    """A horizontal bar chart, each bar labelled with its value."""
    largest = max((row.value for row in rows), default=0) or 1
    height = len(rows) * (BAR_HEIGHT + GAP) + GAP
    span = WIDTH - LABEL_WIDTH - 90
    parts = [
        f'<svg role="img" aria-labelledby="chart-title" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="chart-title">{escape(title)}</title>',
    ]
    for index, row in enumerate(rows):
        y = GAP + index * (BAR_HEIGHT + GAP)
        length = max(1.0, span * row.value / largest) if row.value else 0
        text_y = y + BAR_HEIGHT * 0.7
        parts += [
            f'<text x="0" y="{text_y:.0f}" font-size="13" fill="#1a1a1a">'
            f"{escape(row.label)}</text>",
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{length:.1f}" height="{BAR_HEIGHT}" '
            f'fill="{escape(color)}"/>',
            f'<text x="{LABEL_WIDTH + length + 6:.1f}" y="{text_y:.0f}" font-size="13" '
            f'fill="#1a1a1a">{escape(_number(row.value))}{escape(row.note)}</text>',
        ]
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every value above is escaped)


def _number(value: Any) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
