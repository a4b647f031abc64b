"""``report``: write report.json (the source of truth) and the Markdown and HTML views of it.

The pipeline writes the report again when the run ends, so it also covers stages placed after this one."""

from __future__ import annotations

from compress.registry import Stage, StageConfig, register_stage


class ReportConfig(StageConfig):
    """No options yet: report.json, report.md and report.html are always written."""


@register_stage
class Report(Stage):
    kind = "report"
    summary = "Write report.json, report.md and report.html in the run directory."
    Config = ReportConfig

    def run(self, current, ctx):
        from compress.reporting.write import write_reports

        write_reports(ctx)
        return None
