"""Run the edge recipe, copy its reports into reports/<name>/ and check the edge targets.

    python benchmarks/edge.py                          # recipes/edge.yaml -> runs/edge-<time>, reports/edge/
    python benchmarks/edge.py --run-dir runs/edge-x    # reuse (or resume) a run directory
    python benchmarks/edge.py --run-dir runs/edge-x --redo evaluate   # re-measure it, no retraining
    python benchmarks/edge.py --set data.dataset=spam_assassin --set distill.transfer.corpus=null \
        --set distill.augment.copies=4 --set vocab_prune.min_count=4 \
        --reports reports/edge-spam   # second task (copies, not IMDb text; tokens seen 4+ times)

Latency ratios come from one run with the variants timed interleaved; absolute milliseconds on a
shared machine are noisy, the ratios much less so.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from compress.errors import CompressError
from compress.reporting.targets import check_targets, default_final, render_targets_markdown

REPORT_FILES = ("report.json", "report.md", "report.html")


def bundle_facts(run_dir: Path) -> tuple[str | None, int | None]:
    """(bundled variant, bytes of model + tokenizer) from the run's bundle manifest, when there is one."""
    manifest_path = run_dir / "bundle" / "manifest.json"
    if not manifest_path.is_file():
        return None, None
    manifest = json.loads(manifest_path.read_text())
    files = manifest.get("files", {})
    return manifest.get("variant"), sum(f["bytes"] for f in files.values()) or None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="recipes/edge.yaml")
    parser.add_argument("--run-dir", type=Path, help="Run directory (default: runs/<recipe>-<time>).")
    parser.add_argument("--reports", type=Path, help="Report copies (default: reports/<recipe name>).")
    parser.add_argument("--final", help="Variant checked against the targets (default: the bundled one).")
    parser.add_argument("--int8-baseline", help="Teacher ONNX INT8 variant (default: <baseline>-int8).")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="Recipe override.")
    parser.add_argument("--redo", metavar="STAGE", help="Redo this stage and the later ones in --run-dir.")
    args = parser.parse_args(argv)
    console = Console()
    try:
        from compress.run.pipeline import run_recipe

        result = run_recipe(
            args.recipe, out=args.run_dir, overrides=args.overrides, console=console, redo=args.redo
        )
        if result.report is None:
            raise CompressError(f"{args.recipe}: the recipe wrote no report; add a 'report' stage")
        report = result.report
        bundled, bundle_bytes = bundle_facts(result.run_dir)
        final = args.final or bundled or default_final(report)
        checks = check_targets(report, final, args.int8_baseline, bundle_bytes)
    except CompressError as error:
        console.print(f"[red]error[/]: {error}")
        return 2
    target_dir = args.reports or Path("reports") / report["recipe"]["name"]
    target_dir.mkdir(parents=True, exist_ok=True)
    for name in REPORT_FILES:
        if (result.run_dir / name).is_file():
            shutil.copyfile(result.run_dir / name, target_dir / name)
    (target_dir / "targets.json").write_text(
        json.dumps({"final": final, "targets": [c.to_dict() for c in checks]}, indent=2) + "\n"
    )
    (target_dir / "targets.md").write_text(render_targets_markdown(checks, final))
    table = Table(title=f"edge targets for {final} (run {result.run_dir})")
    for column in ("target", "measured", "goal", "result", "gap", "detail"):
        table.add_column(column)
    for c in checks:
        measured = "-" if c.measured is None else f"{c.measured}{c.unit}"
        result_text = "[green]PASS[/]" if c.passed else "[red]MISS[/]"
        table.add_row(c.target, measured, f"{c.goal}{c.unit}", result_text, c.gap, c.detail)
    console.print(table)
    console.print(f"reports copied to {target_dir}")
    return 0 if all(c.passed for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
