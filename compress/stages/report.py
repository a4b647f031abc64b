"""``report``: write report.json (the source of truth) and the Markdown and HTML views of it.

The pipeline writes the report again when the run ends, so it also covers stages placed after this one."""

from __future__ import annotations

from pydantic import Field

from compress.core.stage import Stage, StageConfig, register_stage


class ReportConfig(StageConfig):
    """report.json, report.md and report.html are always written."""

    compare: list[tuple[str, str]] = Field(
        [],
        description="Pairs [variant, against]: the report states how much faster the variant is than the other "
        "one at every measured setting (p50 ratio and the median of per-round ratios).",
    )


@register_stage
class Report(Stage):
    kind = "report"
    summary = "Write report.json, report.md and report.html in the run directory."
    Config = ReportConfig

    def run(self, current, ctx):
        from compress.reporting.write import write_reports

        write_reports(ctx)
        return None
