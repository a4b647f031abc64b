"""Small inline-SVG charts for the HTML report: no JavaScript, no CDN, readable at 100% zoom."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
FONT = 'font-family="system-ui, sans-serif"'


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering ``low..high`` (1, 2, 5 x 10^k steps)."""
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    ticks = [math.floor(low / step) * step]
    while ticks[-1] < high - 1e-12:  # the last tick must cover ``high``, or points fall off the chart
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _fmt(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


@dataclass(frozen=True)
class Point:
    label: str
    x: float
    y: float
    group: int = 0


def pareto_front(points: Sequence[Point]) -> list[Point]:
    """Points no other point beats on both axes (lower x = faster, higher y = more accurate), by x."""
    front = []
    for p in points:
        dominated = any(
            (q.x <= p.x and q.y >= p.y) and (q.x < p.x or q.y > p.y) for q in points if q is not p
        )
        if not dominated:
            front.append(p)
    return sorted(front, key=lambda p: p.x)


def _frame(width: int, height: int, body: list[str], title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}" {FONT} font-size="14">' + "".join(body) + "</svg>"
    )


def log_ticks(low: float, high: float) -> list[float]:
    """1-2-5 ticks per decade from the last one at or below ``low`` to the first at or above ``high`` (> 0)."""
    first, last = math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1
    candidates = [step * 10.0**power for power in range(first, last + 1) for step in (1, 2, 5)]
    start = max(c for c in candidates if c <= low * (1 + 1e-9))
    end = min(c for c in candidates if c >= high * (1 - 1e-9))
    return [c for c in candidates if start <= c <= end]


def scatter(
    points: Sequence[Point], x_label: str, y_label: str, title: str, groups: Sequence[str] = (), log_x: bool = False,
) -> str:
    """Accuracy-vs-latency style scatter; the Pareto front is drawn as a dashed line through its points.
    ``log_x``: a logarithmic x axis, so variants 10x apart in latency are both readable."""
    width, height, left, right, top, bottom = 880, 440, 80, 220, 30, 60
    xs, ys = [p.x for p in points], [p.y for p in points]
    log_x = log_x and min(xs) > 0
    x_ticks = log_ticks(min(xs) / 1.1, max(xs) * 1.1) if log_x else nice_ticks(0, max(xs) * 1.1)
    y_pad = max((max(ys) - min(ys)) * 0.15, 0.005)
    y_ticks = nice_ticks(min(ys) - y_pad, max(ys) + y_pad)
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        if log_x:
            low, high = math.log10(x_ticks[0]), math.log10(x_ticks[-1])
            return left + plot_w * (math.log10(x) - low) / (high - low)
        return left + plot_w * (x - x_ticks[0]) / (x_ticks[-1] - x_ticks[0])

    def sy(y: float) -> float:
        return top + plot_h * (1 - (y - y_ticks[0]) / (y_ticks[-1] - y_ticks[0]))

    body = _axes(left, top, plot_w, plot_h, x_ticks, y_ticks, sx, sy, x_label, y_label, percent_y=True)
    front = pareto_front(points)
    if len(front) > 1:
        path = " ".join(f"{sx(p.x):.1f},{sy(p.y):.1f}" for p in front)
        body.append(
            f'<polyline points="{path}" fill="none" stroke="#555" stroke-width="2" stroke-dasharray="6 4"/>'
        )
    on_front = {id(p) for p in front}
    placed: list[tuple[float, float]] = []
    for p in sorted(points, key=lambda q: (-q.y, q.x)):
        cx, cy = sx(p.x), sy(p.y)
        label_y = cy - 8
        while any(abs(label_y - y) < 15 and abs(cx - x) < 9 * len(p.label) for x, y in placed):
            label_y += 16  # labels of nearby points stack downwards instead of overprinting
        placed.append((cx, label_y))
        ring = ' stroke="#000" stroke-width="2.5"' if id(p) in on_front else ' stroke="#fff" stroke-width="1"'
        body.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="7" fill="{color(p.group)}"{ring}>'
            f"<title>{escape(p.label)}: {p.x:.2f} ms, {100 * p.y:.2f}%</title></circle>"
        )
        body.append(f'<text x="{cx + 10:.1f}" y="{label_y:.1f}" font-size="13">{escape(p.label)}</text>')
    legend_y = top + 10
    body.append(
        f'<line x1="{width - right + 20}" y1="{legend_y}" x2="{width - right + 50}" y2="{legend_y}" '
        'stroke="#555" stroke-width="2" stroke-dasharray="6 4"/>'
    )
    body.append(f'<text x="{width - right + 56}" y="{legend_y + 5}">Pareto front</text>')
    for index, name in enumerate(groups):
        y = legend_y + 26 * (index + 1)
        body.append(f'<circle cx="{width - right + 35}" cy="{y}" r="7" fill="{color(index)}"/>')
        body.append(f'<text x="{width - right + 56}" y="{y + 5}">{escape(name)}</text>')
    return _frame(width, height, body, title)


def _axes(
    left, top, plot_w, plot_h, x_ticks, y_ticks, sx, sy, x_label, y_label, percent_y=False
) -> list[str]:
    body = [f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#999"/>']
    for t in x_ticks:
        x = sx(t)
        body.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" stroke="#e3e3e3"/>')
        body.append(f'<text x="{x:.1f}" y="{top + plot_h + 20}" text-anchor="middle">{_fmt(t)}</text>')
    for t in y_ticks:
        y = sy(t)
        label = f"{100 * t:.1f}%" if percent_y else _fmt(t)
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#e3e3e3"/>')
        body.append(f'<text x="{left - 8}" y="{y + 5:.1f}" text-anchor="end">{label}</text>')
    body.append(
        f'<text x="{left + plot_w / 2}" y="{top + plot_h + 46}" text-anchor="middle">{escape(x_label)}</text>'
    )
    body.append(
        f'<text transform="translate(18 {top + plot_h / 2}) rotate(-90)" text-anchor="middle">'
        f"{escape(y_label)}</text>"
    )
    return body


def hbars(items: Sequence[tuple[str, float, str]], unit: str, title: str) -> str:
    """Horizontal bars: (label, value, text shown after the bar)."""
    row, left, right = 34, 260, 200
    width = 880
    height = 20 + row * len(items) + 10
    top_value = max(v for _, v, _ in items) or 1.0
    body = []
    for index, (label, value, text) in enumerate(items):
        y = 10 + index * row
        bar = (width - left - right) * value / top_value
        body.append(f'<text x="{left - 10}" y="{y + 20}" text-anchor="end">{escape(label)}</text>')
        body.append(
            f'<rect x="{left}" y="{y + 4}" width="{bar:.1f}" height="{row - 10}" fill="{color(index)}"/>'
        )
        body.append(f'<text x="{left + bar + 8:.1f}" y="{y + 20}">{escape(text)}</text>')
    return _frame(width, height, body, title)


def distributions(rows: Sequence[tuple[str, Sequence[float]]], x_label: str, title: str) -> str:
    """One row per variant: every sample as a dot, a box for p25-p75, a bar at the median, whiskers p5-p95."""
    from compress.evaluation.latency import percentile

    row, left, right, top = 44, 260, 40, 10
    width = 880
    plot_h = row * len(rows)
    height = top + plot_h + 56
    everything = [v for _, samples in rows for v in samples]
    x_ticks = nice_ticks(0, max(everything) * 1.05)
    plot_w = width - left - right

    def sx(x: float) -> float:
        return left + plot_w * (x - x_ticks[0]) / (x_ticks[-1] - x_ticks[0])

    body = [f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#999"/>']
    for t in x_ticks:
        body.append(
            f'<line x1="{sx(t):.1f}" y1="{top}" x2="{sx(t):.1f}" y2="{top + plot_h}" stroke="#e3e3e3"/>'
        )
        body.append(f'<text x="{sx(t):.1f}" y="{top + plot_h + 20}" text-anchor="middle">{_fmt(t)}</text>')
    body.append(
        f'<text x="{left + plot_w / 2}" y="{top + plot_h + 46}" text-anchor="middle">{escape(x_label)}</text>'
    )
    for index, (label, samples) in enumerate(rows):
        mid = top + index * row + row / 2
        body.append(f'<text x="{left - 10}" y="{mid + 5:.1f}" text-anchor="end">{escape(label)}</text>')
        q = {k: percentile(samples, k) for k in (5, 25, 50, 75, 95)}
        body.append(
            f'<line x1="{sx(q[5]):.1f}" y1="{mid:.1f}" x2="{sx(q[95]):.1f}" y2="{mid:.1f}" stroke="#333"/>'
        )
        body.append(
            f'<rect x="{sx(q[25]):.1f}" y="{mid - 12:.1f}" width="{max(sx(q[75]) - sx(q[25]), 1):.1f}" '
            f'height="24" fill="{color(index)}" fill-opacity="0.25" stroke="{color(index)}"/>'
        )
        body.append(
            f'<line x1="{sx(q[50]):.1f}" y1="{mid - 14:.1f}" x2="{sx(q[50]):.1f}" y2="{mid + 14:.1f}" '
            'stroke="#000" stroke-width="3"/>'
        )
        for i, value in enumerate(samples):
            jitter = ((i * 7919) % 17 - 8) * 1.1
            body.append(
                f'<circle cx="{sx(value):.1f}" cy="{mid + jitter:.1f}" r="2.2" fill="{color(index)}" '
                'fill-opacity="0.7"/>'
            )
    return _frame(width, height, body, title)


def heatmap(matrix: Sequence[Sequence[int]], labels: Sequence[str], title: str) -> str:
    """A confusion matrix as a heat map: rows are true classes, columns predicted; darker = more rows
    (shaded per true class, so a small class's errors show as clearly as a large one's)."""
    cell, left, top = 64, 150, 90
    size = cell * len(labels)
    width, height = left + size + 20, top + size + 50
    body = []
    for j, label in enumerate(labels):
        x = left + cell * j + cell / 2
        body.append(
            f'<text transform="translate({x:.1f} {top - 8}) rotate(-35)" font-size="13">{escape(label)}</text>'
        )
    for i, (label, row) in enumerate(zip(labels, matrix, strict=True)):
        y = top + cell * i
        total = sum(row) or 1
        body.append(f'<text x="{left - 8}" y="{y + cell / 2 + 5:.1f}" text-anchor="end" font-size="13">{escape(label)}</text>')
        for j, value in enumerate(row):
            share = value / total
            shade = f"rgba(31, 119, 180, {0.08 + 0.92 * share:.3f})"
            ink = "#fff" if share > 0.55 else "#000"
            x = left + cell * j
            body.append(
                f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{shade}" stroke="#fff">'
                f"<title>true {escape(label)}, predicted {escape(labels[j])}: {value}</title></rect>"
            )
            body.append(
                f'<text x="{x + cell / 2}" y="{y + cell / 2 + 5:.1f}" text-anchor="middle" fill="{ink}">{value}</text>'
            )
    body.append(f'<text x="{left + size / 2}" y="{top + size + 30}" text-anchor="middle">predicted class</text>')
    body.append(f'<text x="12" y="{top - 60}" font-size="13">rows: true class</text>')
    return _frame(width, height, body, title)
