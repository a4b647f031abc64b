"""Compare distillation settings on one teacher: test accuracy, agreement and wall time per setting.

Usage: python benchmarks/distill_sweep.py TEACHER_MODEL_DIR SWEEP.yaml [OUT.jsonl]

SWEEP.yaml maps a setting name to ``distill`` stage options (as in a recipe), applied over ``base:``
(its own entry, optional); a setting's ``seed:`` (default 0) seeds its distillation (student init,
transfer sample, batch order) but never the split. Each setting is distilled in turn with the real
``distill`` code on the recipe split (seed 0, test 2,000, dev 1,000); one JSON line per setting is
appended to OUT.jsonl (default ``reports/distill-int8/sweep.jsonl``) as soon as it finishes, so a long
sweep can be cut short.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from rich.console import Console

import compress  # noqa: F401  (quiets third-party start-up noise)
from compress.core.recipe import DataConfig
from compress.data.sources import load_task
from compress.data.tokenization import TextEncoder
from compress.distillation.config import DistillConfig
from compress.distillation.run import distill, encoded_transfer
from compress.models.persistence import load_model
from compress.runtimes import TorchPredictor
from compress.runtimes.batched import predict_logits
from compress.tasks import get_task


def main(teacher_dir: str, sweep_path: str, out_path: str = "reports/distill-int8/sweep.jsonl") -> None:
    torch.set_num_threads(2)
    console = Console()
    sweep = yaml.safe_load(Path(sweep_path).read_text())
    base = sweep.pop("base", {}) or {}
    teacher = load_model(teacher_dir).eval()
    encoder = TextEncoder.from_dir(teacher_dir, 64)
    task = load_task(DataConfig())
    text_task = get_task()
    train, dev = text_task.split(encoder, task.train), text_task.split(encoder, task.dev)
    test_examples = text_task.examples(encoder, task.test)
    teacher_test = predict_logits(TorchPredictor(teacher), test_examples).argmax(-1)
    labels = np.asarray(task.test.labels)
    console.print(f"teacher test accuracy {np.mean(teacher_test == labels):.4f}")
    for name, options in sweep.items():
        options = {**base, **(options or {})}
        seed = int(options.pop("seed", 0))
        config = DistillConfig.model_validate(options)
        console.print(f"[bold]{name}[/]: {config.model_dump(exclude_defaults=True)}")
        started = time.perf_counter()
        result = distill(
            teacher, train, dev, encoder.special_ids, encoder.mask_id, config, seed, console,
            transfer=encoded_transfer(config.transfer, task, text_task, encoder, seed),
        )
        seconds = time.perf_counter() - started
        predicted = predict_logits(TorchPredictor(result.student), test_examples).argmax(-1)
        row = {
            "name": name,
            "options": config.model_dump(exclude_defaults=True),
            "seed": seed,
            "test_accuracy": float(np.mean(predicted == labels)),
            "teacher_test_accuracy": float(np.mean(teacher_test == labels)),
            "agreement_with_teacher": float(np.mean(predicted == teacher_test)),
            "dev_history": result.info["training"]["history"],
            "seconds": round(seconds, 1),
            "teacher_cache_seconds": result.info["distillation"]["teacher_cache_seconds"],
        }
        console.print(
            f"  -> test {row['test_accuracy']:.4f} (teacher {row['teacher_test_accuracy']:.4f}), "
            f"agreement {row['agreement_with_teacher']:.4f}, {seconds:.0f} s"
        )
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        with open(out_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
