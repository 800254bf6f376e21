"""The report's charts, drawn as inline SVG (no script, no font, no file: the page stays
self-contained under its Content-Security-Policy).

    bar_chart       stacked bars, one per night (flags per rule, money at risk by verdict)
    line_chart      one line per series, a dot per night (rows quarantined)
    sparkline       a headline figure's last nights ("first night" when there is only tonight)
    row_chart       horizontal stacked bars on one scale (the money tie-out per currency)
    timeline_chart  a case's events on a day axis

Drawn by hand rather than by a plotting library: the four shapes take ~200 lines, the output
is small, stable text (tests compare it; pages stay under 400 kB for 30 nights), and a library
would bring either a script to run in the page (Vega, Chart.js, pygal's tooltips) or large
generated SVG with embedded glyphs and random ids (matplotlib). Every text is escaped.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date
from html import escape
from zoneinfo import ZoneInfo

from markupsafe import Markup

from jobs.outputs import formats

# Tableau 10: distinguishable, prints well in grey too.
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
VERDICT_COLORS = {"breach": "#e15759", "stop": "#f28e2b"}


def _nice_ceiling(value: float) -> tuple[float, float]:
    """A round top for the y axis and its tick step (4-5 ticks)."""
    if value <= 0:
        return 1.0, 0.25
    raw = value / 4
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * power
        if step >= raw:
            break
    if value >= 4 and step < 1:
        step = 1.0
    return step * math.ceil(value / step - 1e-9), step


def _tick(value: float, money: bool) -> str:
    if money and abs(value) >= 10_000:
        return f"{value / 1000:,.0f}k"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:g}"


def _x_labels(labels: list, plot_left: float, slot: float) -> list[tuple[float, str]]:
    every = max(1, math.ceil(len(labels) / 8))
    out = []
    for index, label in enumerate(labels):
        if (len(labels) - 1 - index) % every == 0:  # tonight is always labelled
            text = label.strftime("%m-%d") if isinstance(label, date) else str(label)
            out.append((plot_left + slot * (index + 0.5), text))
    return out


def _legend(entries: list[tuple[str, str]], left: float, width: int) -> tuple[list[str], float]:
    """Legend swatches in rows across the chart's top; returns the parts and the rows' bottom."""
    parts, x, y = [], left, 24
    for name, color in entries:
        item_width = 24 + 7.0 * len(name)
        if x > left and x + item_width > width - 10:
            x, y = left, y + 15
        parts.append(
            f'<rect x="{x:.0f}" y="{y}" width="10" height="10" fill="{color}"/>'
            f'<text class="legend" x="{x + 14:.0f}" y="{y + 9}">{escape(name)}</text>'
        )
        x += item_width
    return parts, (y + 15 if entries else 24)


def _frame(
    title: str,
    key: str,
    width: int,
    height: float,
    legend: list[str],
    body: list[str],
    y_label: str,
    top: float,
    bottom: float,
    left: float,
    nights: int,
) -> Markup:
    parts = [
        f'<svg class="chart" data-chart="{escape(key)}" data-nights="{nights}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text class="chart-title" x="{left}" y="14">{escape(title)}</text>',
        f'<text class="axis-label" transform="translate(12 {(top + bottom) / 2:.0f}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>',
        f'<text class="axis-label" x="{(left + width - 10) / 2:.0f}" y="{height - 3}" text-anchor="middle">'
        f"night (billing day)</text>",
        *legend,
        *body,
        "</svg>",
    ]
    return Markup("".join(parts))


def _axes(labels, y_max, step, money, left, right, top, bottom) -> list[str]:
    body = []
    ticks = round(y_max / step)
    for index in range(ticks + 1):
        value = step * index
        y = bottom - (bottom - top) * value / y_max
        body.append(
            f'<line class="grid" x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{left - 4}" y="{y + 3:.1f}" text-anchor="end">{_tick(value, money)}</text>'
        )
    slot = (right - left) / max(1, len(labels))
    for x, text in _x_labels(labels, left, slot):
        body.append(f'<text class="tick" x="{x:.1f}" y="{bottom + 13}" text-anchor="middle">{text}</text>')
    body.append(f'<line class="axis" x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}"/>')
    return body


def _plot_area(series: list[tuple[str, str, list[float]]], width: int, plot_height: int):
    """The legend over a plot, and the plot's edges: legend, left, right, top, bottom, height."""
    legend, legend_bottom = _legend([(name, color) for name, color, _ in series], 52, width)
    top = legend_bottom + 8
    return legend, 52, width - 10, top, top + plot_height, top + plot_height + 32


def bar_chart(
    title: str,
    labels: list,
    series: list[tuple[str, str, list[float]]],
    y_label: str,
    key: str,
    money: bool = False,
    width: int = 640,
    plot_height: int = 170,
) -> Markup:
    """Stacked bars, one per night; each series one colour, listed in the legend."""
    legend, left, right, top, bottom, height = _plot_area(series, width, plot_height)
    totals = [sum(values[index] for _, _, values in series) for index in range(len(labels))]
    y_max, step = _nice_ceiling(max(totals, default=0))
    body = _axes(labels, y_max, step, money, left, right, top, bottom)
    slot = (right - left) / max(1, len(labels))
    bar = max(2.0, min(28.0, slot * 0.7))
    for index, label in enumerate(labels):
        base = bottom
        x = left + slot * index + (slot - bar) / 2
        for name, color, values in series:
            value = values[index]
            if not value:
                continue
            h = (bottom - top) * value / y_max
            base -= h
            shown = formats.money(value) if money else f"{value:,}"
            body.append(
                f'<rect class="bar" x="{x:.1f}" y="{base:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{color}"><title>{label} {escape(name)}: {shown}</title></rect>'
            )
    if not any(totals):
        body.append(
            f'<text class="empty" x="{(left + right) / 2:.0f}" y="{(top + bottom) / 2:.0f}" '
            f'text-anchor="middle">nothing on these nights</text>'
        )
    return _frame(title, key, width, height, legend, body, y_label, top, bottom, left, len(labels))


def line_chart(
    title: str,
    labels: list,
    series: list[tuple[str, str, list[float]]],
    y_label: str,
    key: str,
    money: bool = False,
    width: int = 640,
    plot_height: int = 130,
) -> Markup:
    """One line per series, a dot per night."""
    legend, left, right, top, bottom, height = _plot_area(series, width, plot_height)
    y_max, step = _nice_ceiling(max((value for _, _, values in series for value in values), default=0))
    body = _axes(labels, y_max, step, money, left, right, top, bottom)
    slot = (right - left) / max(1, len(labels))
    for name, color, values in series:
        points = [
            (left + slot * (index + 0.5), bottom - (bottom - top) * value / y_max) for index, value in enumerate(values)
        ]
        if len(points) > 1:
            body.append(
                f'<polyline class="line" fill="none" stroke="{color}" stroke-width="2" points="'
                + " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
                + '"/>'
            )
        for (x, y), label, value in zip(points, labels, values, strict=False):
            body.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"><title>{label} {escape(name)}: '
                f"{value:,}</title></circle>"
            )
    return _frame(title, key, width, height, legend, body, y_label, top, bottom, left, len(labels))


def sparkline(values: list[float], width: int = 110, height: int = 26) -> Markup:
    """A tiny line of the last nights, tonight's point marked; with tonight alone no line (a flat
    one would suggest a history), the words "first night"."""
    if not values:
        return Markup("")
    if len(values) == 1:
        return Markup('<span class="spark first-night">first night</span>')
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = (width - 6) / (len(values) - 1)
    points = [
        (3 + step * index, height - 4 - (height - 8) * (value - low) / span) for index, value in enumerate(values)
    ]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    x, y = points[-1]
    return Markup(
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-hidden="true"><polyline fill="none" stroke="#4e79a7" stroke-width="1.5" points="{line}"/>'
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="#4e79a7"/></svg>'
    )


def row_chart(
    title: str,
    rows: list[tuple[str, list[tuple[str, str, float]]]],
    key: str,
    unit: str,
    width: int = 560,
    bar: int = 18,
) -> Markup:
    """Horizontal bars, one per row, each stacked from its parts, all on one scale; every part
    is labelled with its amount in a tooltip, each row with its total at its end."""
    left, right, top = 150, width - 90, 24
    height = top + len(rows) * (bar + 10) + 6
    scale = max((sum(value for _, _, value in parts) for _, parts in rows), default=0) or 1.0
    body = [f'<line class="axis" x1="{left}" x2="{left}" y1="{top - 4}" y2="{height - 4}"/>']
    for index, (label, parts) in enumerate(rows):
        y = top + index * (bar + 10)
        body.append(
            f'<text class="tick" x="{left - 6}" y="{y + bar * 0.7:.1f}" text-anchor="end">{escape(label)}</text>'
        )
        x = float(left)
        for name, color, value in parts:
            w = (right - left) * value / scale
            if w > 0:
                body.append(
                    f'<rect class="bar" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar}" fill="{color}">'
                    f"<title>{escape(label)}, {escape(name)}: {formats.money(value)} {escape(unit)}</title></rect>"
                )
            x += w
        total = sum(value for _, _, value in parts)
        body.append(f'<text class="tick" x="{x + 5:.1f}" y="{y + bar * 0.7:.1f}">{formats.money(total)}</text>')
    return Markup(
        f'<svg class="chart rows" data-chart="{escape(key)}" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<text class="chart-title" x="0" y="14">{escape(title)}</text>{"".join(body)}</svg>'
    )


_EVENT_STYLE = {
    "purchase": ("#4e79a7", "circle"),
    "refund requested": ("#f28e2b", "triangle"),
    "refund paid": ("#59a14f", "square"),
    "refund rejected": ("#9c755f", "square"),
}


def timeline_chart(events: list[dict], zone: ZoneInfo, as_of: date, width: int = 760, height: int = 74) -> Markup:
    """A case's events on a day axis: purchases, refund requests, payouts, status changes."""
    if not events:
        return Markup("")
    days = [event["happened_at"].astimezone(zone).date() for event in events]
    first, last = min(days), max(max(days), as_of)
    span = max(1, (last - first).days)
    left, right, axis_y = 16, width - 16, 40
    parts = [
        f'<svg class="chart timeline" data-chart="timeline" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="timeline">',
        f'<line class="axis" x1="{left}" x2="{right}" y1="{axis_y}" y2="{axis_y}"/>',
    ]
    for day, anchor in ((first, "start"), (last, "end")):
        x = left + (right - left) * (day - first).days / span
        parts.append(f'<text class="tick" x="{x:.0f}" y="{axis_y + 26}" text-anchor="{anchor}">{day:%Y-%m-%d}</text>')
    stacks: dict = defaultdict(int)
    for event, day in zip(events, days, strict=False):
        x = left + (right - left) * (day - first).days / span
        level = stacks[(day, event["kind"] == "purchase")]
        stacks[(day, event["kind"] == "purchase")] += 1
        color, shape = _EVENT_STYLE.get(
            event["kind"], ("#e15759" if "suspended" in event["kind"] else "#bab0ac", "diamond")
        )
        y = axis_y + 9 if event["kind"] == "purchase" else axis_y - 9 - 9 * level
        when = escape(formats.when(event["happened_at"], zone))
        label = f"<title>{when} {escape(event['kind'])}: {escape(event['detail'] or '')}</title>"
        if shape == "circle":
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{color}">{label}</circle>')
        elif shape == "triangle":
            parts.append(
                f'<polygon points="{x:.1f},{y - 5:.1f} {x + 5:.1f},{y + 4:.1f} {x - 5:.1f},{y + 4:.1f}" '
                f'fill="{color}">{label}</polygon>'
            )
        elif shape == "square":
            parts.append(f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="{color}">{label}</rect>')
        else:
            parts.append(
                f'<polygon points="{x:.1f},{y - 6:.1f} {x + 5:.1f},{y:.1f} {x:.1f},{y + 6:.1f} {x - 5:.1f},{y:.1f}" '
                f'fill="{color}">{label}</polygon>'
            )
    x = left + (right - left) * (as_of - first).days / span
    parts.append(
        f'<line class="as-of" x1="{x:.1f}" x2="{x:.1f}" y1="4" y2="{axis_y + 14}"/>'
        f'<text class="tick" x="{x - 3:.1f}" y="10" text-anchor="end">as_of</text></svg>'
    )
    return Markup("".join(parts))
