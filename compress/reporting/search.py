"""The report section of a latency-budget search: every candidate measured, the budget, the Pareto front of
latency and proxy accuracy, and why the winner won (shared by the Markdown and HTML reports)."""

from __future__ import annotations

from typing import Any

from compress.reporting import svg

HEADER = ["candidate", "layers / heads / FFN / hidden", "p50 ms", "vs reference", "size MB", "fits", "proxy dev",
          "final dev", ""]


def searches(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(variant name, info['search'])`` for every variant a search chose."""
    return [(v["name"], v["info"]["search"]) for v in report["variants"] if v.get("info", {}).get("search")]


def _score(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def front(search: dict[str, Any]) -> list[dict[str, Any]]:
    """Candidates with a proxy score that no other is both faster and better than (by proxy dev score)."""
    scored = [c for c in search["candidates"] if c.get("proxy_dev") is not None]
    points = [svg.Point(c["name"], c["p50_ms"], c["proxy_dev"]) for c in scored]
    names = {p.label for p in svg.pareto_front(points)}
    return [c for c in scored if c["name"] in names]


def rows(search: dict[str, Any]) -> list[list[str]]:
    """One row per candidate, fastest first."""
    winner = search["winner"]
    out = []
    for c in sorted(search["candidates"], key=lambda c: c["p50_ms"]):
        ratio = c.get("vs_reference")
        note = "**winner**" if c["name"] == winner else c.get("why_not") or ("proxy" if c.get("on_frontier") else "")
        out.append([
            c["name"],
            f"{c['layers']} / {c['heads']} / {c['ffn']} / {c['hidden']}",
            f"{c['p50_ms']:.3f}" + (" (cached)" if c.get("cached") else ""),
            "-" if ratio is None else f"{ratio:.2f}x",
            f"{c['size_mb']:.1f}",
            "yes" if c["fits"] else "no",
            _score(c.get("proxy_dev")),
            _score(c.get("final_dev")),
            note,
        ])
    return out


def summary(search: dict[str, Any]) -> list[str]:
    budget, seconds, proxy = search["budget"], search["seconds"], search["proxy"]
    fitting = sum(c["fits"] for c in search["candidates"])
    reference = (
        f" {budget['reference']} measured {budget['reference_ms']:.3f} ms in the same sweep." if budget.get("reference") else ""
    )
    pareto = ", ".join(f"{c['name']} ({c['p50_ms']:.2f} ms, {_score(c['proxy_dev'])})" for c in front(search))
    return [
        f"Budget: {budget['limit']}.{reference}",
        f"{len(search['candidates'])} candidates measured, {fitting} inside the budget; the largest fitting ones "
        f"were ranked by a proxy distillation ({proxy['texts']} transfer texts, {proxy['epochs']} epoch) and the "
        f"best {search['top_k']} trained in full.",
        f"Winner: **{search['winner']}**: {search['reason']}.",
        f"Pareto front of latency and proxy dev score: {pareto or '-'}.",
        f"Time: sweep {seconds['sweep']:.0f} s, proxies {seconds['proxy']:.0f} s, full training {seconds['full']:.0f} s "
        f"({seconds['total'] / 60:.1f} min in all).",
        *[f"Left out: {note}." for note in search.get("notes", [])],
    ]


def markdown_section(report: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for name, search in searches(report):
        lines += [f"## Latency-budget search: {name}", ""]
        lines += [f"- {line}" for line in summary(search)]
        lines += ["", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        lines += ["| " + " | ".join(row) + " |" for row in rows(search)]
        lines.append("")
    return lines


def scatter(search: dict[str, Any]) -> str | None:
    """Proxy dev score against measured latency, for the candidates that had a proxy distillation."""
    points = [svg.Point(c["name"], c["p50_ms"], c["proxy_dev"]) for c in search["candidates"] if c.get("proxy_dev") is not None]
    if len(points) < 2:
        return None
    return svg.scatter(points, "measured p50 latency (ms)", "proxy dev score", "search candidates")
