"""The ``compress`` command line: a thin layer over the Python API that prints with rich."""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from compress.errors import CompressError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Compress trained Transformers for edge devices: prune, distill, quantize, validate, report.",
    pretty_exceptions_enable=False,
)
# Paths in messages must never be broken across lines; tables piped to a file or log get room for
# their columns (rich would otherwise squeeze them into 80).
PIPED_WIDTH = 160
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else PIPED_WIDTH)
err_console = Console(stderr=True, soft_wrap=True)
_state = {"debug": False}


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
) -> None:
    _state["debug"] = debug


def friendly_errors(func):
    """Print a CompressError as one clear message and exit 2; tracebacks only with --debug."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except CompressError as error:
            if _state["debug"]:
                raise
            err_console.print(f"[bold red]error:[/] {error}", highlight=False)
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt as interrupt:
            err_console.print(
                "[yellow]interrupted[/]: finished stages and training epochs are saved; rerun with the same --out to resume"
            )
            raise typer.Exit(128 + getattr(interrupt, "signal_number", signal.SIGINT)) from None

    return wrapper


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, systemd, job schedulers), raised where Ctrl-C would be: handled the same way."""

    signal_number = signal.SIGTERM


def _raise_terminated(signal_number, frame):
    raise Terminated


@contextmanager
def sigterm_as_interrupt():
    """While a run runs, SIGTERM abandons the current epoch like Ctrl-C (exit 143 = 128 + 15, not 130)."""
    if threading.current_thread() is not threading.main_thread():  # signal handlers live in the main thread
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@app.command()
@friendly_errors
def run(
    recipe: Annotated[str, typer.Argument(help="Recipe file, or the name of a bundled recipe (see 'compress recipes').")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run directory (default: runs/<recipe>-<time>).")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a field: STAGE.FIELD=VALUE or model/data.FIELD=VALUE.")
    ] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Start an existing run directory over (deletes only compress's outputs).")
    ] = False,
    redo: Annotated[
        str | None,
        typer.Option("--redo", metavar="STAGE", help="Redo this stage (by id) and every later one in an existing "
                     "run directory, keeping what earlier stages made; the recipe may differ from STAGE on."),
    ] = None,
    trust_model_code: Annotated[
        bool,
        typer.Option("--trust-model-code", help="Allow model files that run code on load (pickles); trusted files only."),
    ] = False,
) -> None:
    """Run a recipe end to end; rerun with the same --out to resume an interrupted run."""
    from compress import run_recipe

    overrides = (set_ or []) + (["model.trust_model_code=true"] if trust_model_code else [])
    with sigterm_as_interrupt():
        result = run_recipe(recipe, out=out, overrides=overrides, console=console, restart=restart, redo=redo)
    console.print(f"\n[bold green]done[/]: run directory {result.run_dir}")
    if result.report_path:
        console.print(f"  report: {result.report_path.with_suffix('.md')} (and {result.report_path.name})")
        _print_summary(result.report)
    if result.bundle_dir:
        console.print(f"  bundle: {result.bundle_dir}  (try: {_bundle_hint(result.bundle_dir)})")


def _bundle_hint(bundle_dir: Path) -> str:
    """The command that uses this bundle: ``embed`` for an embedding bundle, ``predict`` otherwise."""
    from compress.bundle.predict import MANIFEST_FILE
    from compress.core.files import read_json

    try:
        embeds = read_json(Path(bundle_dir) / MANIFEST_FILE).get("output") == "sentence_embedding"
    except (OSError, ValueError, AttributeError):
        embeds = False
    return f'compress {"embed" if embeds else "predict"} {bundle_dir} "a great film"'


def _print_summary(report: dict | None) -> None:
    from compress.evaluation.setting import Setting

    if not report:
        return
    # Tasks without an accuracy (regression, multi-label, embeddings) show their primary metric instead.
    has_accuracy = any(v.get("accuracy") is not None for v in report["variants"])
    metric = "accuracy" if has_accuracy else (report.get("task") or {}).get("primary") or "accuracy"
    table = Table(title="variants", show_lines=False)
    for column in ("variant", metric.replace("_", " "), "size", "p50 b1 (cpu)", "speed-up"):
        table.add_column(column)
    for variant in report["variants"]:
        cpu = variant.get("latency_ms", {}).get("cpu", {})
        key = next((k for k in cpu if Setting.parse(k).batch == 1), None)
        speed = variant.get("speedup_vs_baseline", {}).get("cpu", {}).get(key) if key else None
        value = variant.get(metric)
        table.add_row(
            variant["name"],
            "-" if value is None else (f"{100 * value:.2f}%" if metric == "accuracy" else f"{value:.4f}"),
            f"{variant['size_bytes'] / 1e6:.1f} MB",
            f"{cpu[key]['p50']:.2f} ms ({key})" if key else "-",
            f"{speed:.2f}x" if speed else "-",
        )
    console.print(table)


@app.command()
@friendly_errors
def validate(
    recipe: Annotated[str, typer.Argument(help="Recipe file or bundled recipe name.")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a field, as in 'run'.")] = None,
) -> None:
    """Check a recipe without running it."""
    from compress import validate_recipe
    from compress.models.families.check import check_recipe_families

    parsed = validate_recipe(recipe, set_ or [])
    stages = " -> ".join(s.id for s in parsed.stages)
    console.print(f"[green]ok[/]: {parsed.source} ({parsed.name}): {stages}; {check_recipe_families(parsed).line}")


@app.command()
@friendly_errors
def recipes() -> None:
    """List the bundled recipes."""
    from compress import list_recipes

    table = Table(show_header=True)
    table.add_column("recipe")
    table.add_column("what it does")
    for name, description in list_recipes():
        table.add_row(name, description)
    console.print(table)


@app.command()
@friendly_errors
def predict(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory written by a run.")],
    texts: Annotated[list[str], typer.Argument(help="Texts to classify.")],
) -> None:
    """Classify texts with a deployable bundle (ONNX Runtime or OpenVINO, as its manifest says; no torch)."""
    from compress.bundle.predict import predict as run_predict

    for prediction in run_predict(bundle, texts):
        score = prediction.value if prediction.value is not None else prediction.probability
        typer.echo(f"{prediction.label}\t{score:.3f}\t{prediction.text}")


@app.command()
@friendly_errors
def embed(
    bundle: Annotated[Path, typer.Argument(help="Sentence-embedding bundle directory written by a run.")],
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to embed.")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="Texts to embed, one per line (UTF-8).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the vectors to this .npy file.")] = None,
) -> None:
    """Embed texts with a sentence-embedding bundle (ONNX Runtime, no torch): one vector per line, or --out FILE.npy."""
    import numpy as np

    from compress.bundle.embed import embed as run_embed

    every = list(texts or [])
    if file is not None:
        try:
            every += [line for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as error:
            raise CompressError(f"--file {file}: cannot read it as UTF-8 text ({error})") from None
    if not every:
        raise CompressError("no texts to embed: give texts or --file")
    vectors = run_embed(bundle, every)
    if out is not None:
        np.save(out, vectors)
        typer.echo(f"{vectors.shape[0]} vectors of {vectors.shape[1]} dimensions -> {out}")
        return
    for vector in vectors:
        typer.echo(" ".join(f"{value:.6f}" for value in vector))


def _int_list(text: str, option: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise CompressError(f"{option}: expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise CompressError(f"{option}: expected positive integers, got {text!r}")
    return values


@app.command()
@friendly_errors
def bench(
    models: Annotated[list[str], typer.Argument(help="HF checkpoint dirs, compress model dirs or .onnx files; "
                                                "the first is the baseline.")],
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    batch_sizes: Annotated[str, typer.Option(help="Comma-separated batch sizes.")] = "1,8",
    seq_lengths: Annotated[str, typer.Option(help="Comma-separated sequence lengths (tokens).")] = "128",
    rounds: Annotated[int, typer.Option(help="Interleaved timed rounds per setting.")] = 30,
    warmup: Annotated[int, typer.Option(help="Untimed calls per model and setting.")] = 5,
    blocks: Annotated[int, typer.Option(help="Take the rounds in this many blocks, alternating between "
                                        "settings, so each setting spans the whole measurement.")] = 5,
    threads: Annotated[int, typer.Option(help="Intra-op threads (fixed, recorded).")] = 2,
    runtimes: Annotated[str | None, typer.Option(help="Comma-separated runtimes: torch, torch.compile, "
                                                 "torch-fp16, onnxruntime, onnxruntime-trt (default: all but "
                                                 "torch.compile, where they apply).")] = None,
    memory: Annotated[bool, typer.Option(help="Measure peak memory (a fresh process per model on CPU).")] = True,
    tokenizer: Annotated[Path | None, typer.Option(help="Directory with tokenizer.json, when not next to a model.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the results: .json (report.json "
                                             "shape), .md or .html.")] = None,
    trust_model_code: Annotated[
        bool,
        typer.Option("--trust-model-code", help="Allow compress model directories that run code on load "
                     "(torch.export programs, factories); trusted files only."),
    ] = False,
) -> None:
    """Measure latency, throughput, memory and size of models outside a recipe (same code as 'evaluate')."""
    from pydantic import ValidationError

    from compress.evaluation.bench import bench as run_bench
    from compress.evaluation.suite import LatencySettings

    options = {"devices": [device], "batch_sizes": _int_list(batch_sizes, "--batch-sizes"),
               "seq_lengths": _int_list(seq_lengths, "--seq-lengths"), "rounds": rounds, "warmup": warmup,
               "blocks": blocks, "threads": threads, "memory": memory}
    if runtimes:
        options["runtimes"] = [r.strip() for r in runtimes.split(",") if r.strip()]
    try:
        settings = LatencySettings(**options)
    except ValidationError as error:
        problems = "; ".join(f"--{'-'.join(str(x) for x in e['loc'][:1])}: {e['msg']}" for e in error.errors())
        raise CompressError(problems.replace("_", "-")) from None
    report = run_bench(models, settings, tokenizer, console, trust_model_code=trust_model_code)
    _print_bench(report)
    if out:
        from compress.reporting.write import write_report_file

        console.print(f"written: {write_report_file(report, out)}")


def _print_bench(report: dict) -> None:
    from compress.reporting.views import mb, memory_text, speedup_text

    table = Table(title=f"latency (ms), baseline {report['baseline']}")
    for column in ("model", "runtime", "setting", "p50", "p90", "p99", "samples/s", "speed-up", "size", "memory"):
        table.add_column(column, overflow="fold")
    for v in report["variants"]:
        for device, settings in v.get("latency_ms", {}).items():
            for key, s in settings.items():
                table.add_row(v["name"], f"{v['runtime']} {v['precision']}", f"{device} {key}", f"{s['p50']:.2f}",
                              f"{s['p90']:.2f}", f"{s['p99']:.2f}", f"{s['throughput']:.0f}",
                              speedup_text(v, device, key), mb(v.get("size_bytes")), memory_text(v, device))
    console.print(table)
    for note in report["evaluation"]["notes"]:
        console.print(f"[yellow]note[/]: {note}", highlight=False)


@app.command()
@friendly_errors
def report(
    runs: Annotated[list[Path], typer.Argument(help="Run directories (or report.json files).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output HTML file (default: re-render the one "
                                             "run's report.md/html in place; comparison.html for several).")] = None,
) -> None:
    """Render a run's report again, or compare several runs on one HTML page."""
    from compress.reporting.write import render_runs

    for path in render_runs(runs, out):
        console.print(f"written: {path}")


def entry() -> None:  # pragma: no cover - for python -m compress
    app(prog_name="compress")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(entry())
