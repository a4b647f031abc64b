"""Write report.json and the views rendered from it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from compress.core.context import RunContext
from compress.core.files import read_json, write_json_atomic, write_text_atomic
from compress.errors import CompressError
from compress.reporting.build import build_report
from compress.reporting.html import render_comparison_html, render_html
from compress.reporting.markdown import render_markdown


def write_reports(ctx: RunContext) -> Path:
    report = build_report(ctx)
    path = write_json_atomic(ctx.run_dir / "report.json", report)
    write_views(report, ctx.run_dir)
    return path


def write_views(report: dict[str, Any], directory: Path) -> list[Path]:
    """report.md and report.html next to report.json, rendered from the report alone."""
    return [
        write_text_atomic(directory / "report.md", render_markdown(report)),
        write_text_atomic(directory / "report.html", render_html(report)),
    ]


def load_report(path: str | Path) -> dict[str, Any]:
    """report.json from a run directory (or the file itself), or a clear error naming it."""
    path = Path(path)
    target = path / "report.json" if path.is_dir() else path
    if not target.is_file():
        raise CompressError(f"{path}: no report.json here (is it a run directory whose report stage ran?)")
    try:
        report = read_json(target)
    except (OSError, ValueError) as error:
        raise CompressError(f"{target}: not readable JSON ({error})") from None
    if not isinstance(report, dict) or "variants" not in report or "baseline" not in report:
        raise CompressError(f"{target}: not a compress report (no 'variants'/'baseline')")
    return report


def render_runs(run_dirs: Sequence[str | Path], out: str | Path | None = None) -> list[Path]:
    """One run: re-render its report.md and report.html (or write the HTML to ``out``).
    Several runs: one comparison page at ``out`` (default ``comparison.html``)."""
    reports = [load_report(d) for d in run_dirs]
    if not reports:
        raise CompressError("give at least one run directory")
    if len(reports) == 1 and out is None:
        directory = Path(run_dirs[0])
        return write_views(reports[0], directory if directory.is_dir() else directory.parent)
    if len(reports) == 1:
        return [write_text_atomic(out, render_html(reports[0]))]
    labels = _labels(run_dirs)
    return [write_text_atomic(out or "comparison.html", render_comparison_html(list(zip(labels, reports, strict=True))))]


def _labels(run_dirs: Sequence[str | Path]) -> list[str]:
    names = [Path(d).name if Path(d).is_dir() else Path(d).parent.name for d in run_dirs]
    return names if len(set(names)) == len(names) else [str(d) for d in run_dirs]


def write_report_file(report: dict[str, Any], out: str | Path) -> Path:
    """Write ``report`` as JSON, Markdown or HTML, chosen by ``out``'s suffix."""
    out = Path(out)
    if out.suffix == ".md":
        return write_text_atomic(out, render_markdown(report))
    if out.suffix in (".html", ".htm"):
        return write_text_atomic(out, render_html(report))
    return write_json_atomic(out, report)
