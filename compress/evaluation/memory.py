"""Peak CPU memory of one variant on one runtime, measured in a fresh process.

Within the interleaved latency process every variant is loaded at once, so process RSS cannot say
which variant owns what (and the peak only ever grows). A child process per variant imports the
runtime's library, records its RSS, loads the model, runs the largest batch a few times and reports
its peak RSS: ``peak_rss_bytes`` is what a process serving only this variant needs, ``model_rss_bytes``
the part the model and its activations add on top of the imported libraries.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from compress.core.variant import Variant
from compress.runtimes import Inputs, get_runtime, open_runtime

CALLS = 3
TIMEOUT_S = 600
PACKAGE_ROOT = Path(__file__).resolve().parents[2]
"""The directory holding this ``compress`` package."""


def measure_process_memory(variant: Variant, runtime: str, inputs: Inputs, threads: int) -> dict[str, Any]:
    """Run the child and return its report; raises RuntimeError with the child's last words on failure."""
    record = variant.to_record()
    for key in ("path", "processor_dir"):
        record[key] = str(Path(record[key]).resolve())
    request = {
        "variant": record,
        "runtime": runtime,
        "threads": threads,
        "inputs": {name: {"dtype": str(value.dtype), "values": value.tolist()} for name, value in inputs.items()},
    }
    result = subprocess.run(
        [sys.executable, "-m", "compress.evaluation.memory"],
        # ``-m`` puts the working directory first on sys.path: run from the root this package was
        # imported from, so the child measures with the same compress code as the parent.
        cwd=PACKAGE_ROOT,
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise RuntimeError((result.stderr.strip().splitlines() or ["no output"])[-1])
    return json.loads(lines[-1])


def peak_rss_bytes() -> int:
    """This process's RSS high-water mark (VmHWM). Unlike ``ru_maxrss``, which Linux carries across
    fork/exec (a child of a big parent would report the parent's peak), VmHWM starts afresh at exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status (peak RSS needs Linux)")


def _child() -> None:
    import psutil

    request = json.loads(sys.stdin.read())
    runtime = request["runtime"]
    # the runtime's library is imported before the baseline reading, like the model's own process
    importlib.import_module(get_runtime(runtime).library)
    from compress.evaluation.path_variants import loadable

    before = psutil.Process().memory_info().rss
    variant = loadable(Variant.from_record(request["variant"]))
    predictor = open_runtime(variant, runtime, "cpu", request["threads"])
    inputs = {name: np.asarray(i["values"], dtype=i["dtype"]) for name, i in request["inputs"].items()}
    for _ in range(CALLS):
        predictor.run(inputs)
    peak = peak_rss_bytes()
    print(
        json.dumps(
            {"peak_rss_bytes": peak, "model_rss_bytes": max(0, peak - before), "library_rss_bytes": before}
        )
    )


if __name__ == "__main__":
    _child()
