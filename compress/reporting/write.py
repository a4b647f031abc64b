"""Write report.json and the views rendered from it."""

from __future__ import annotations

from pathlib import Path

from compress.context import RunContext
from compress.io_utils import write_json_atomic, write_text_atomic
from compress.reporting.build import build_report
from compress.reporting.markdown import render_markdown


def write_reports(ctx: RunContext) -> Path:
    report = build_report(ctx)
    path = write_json_atomic(ctx.run_dir / "report.json", report)
    write_text_atomic(ctx.run_dir / "report.md", render_markdown(report))
    return path
