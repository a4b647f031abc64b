"""How well a merged single head reproduces each copied teacher layer, per merge scale.

Usage: python benchmarks/distill_merge_scale.py TEACHER_MODEL_DIR [c1,c2,...]
Prints, per scale, the MSE between student layer and teacher layer outputs on 256 train texts.
"""

from __future__ import annotations

import sys

import torch

import compress  # noqa: F401  (quiets third-party start-up noise)
from compress.core.recipe import DataConfig
from compress.data.batching import pad_batch
from compress.data.sources import load_task
from compress.data.tokenization import TextEncoder
from compress.distillation.student import StudentSpec, build_student
from compress.models import architectures
from compress.models.persistence import load_model


def main(path: str, choices: list) -> None:
    torch.set_num_threads(2)
    teacher = load_model(path)
    encoder = TextEncoder.from_dir(path, 64)
    texts = load_task(DataConfig()).train.texts[:256]
    ids, mask = (torch.from_numpy(a) for a in pad_batch(encoder.encode(texts), encoder.pad_id))
    with torch.no_grad():
        hidden = teacher(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    additive = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    valid = mask.bool()
    for ffn in (1536, 768):
        for choice in choices:
            spec = StudentSpec(layers=2, heads=1, ffn=ffn, merge_scale=choice)
            student, init = build_student(teacher, spec, {"input_ids": ids[:64], "attention_mask": mask[:64]})
            errors = []
            layers = architectures.encoder_layers(student)
            with torch.no_grad():
                for index, source in enumerate(init.teacher_layers):
                    out = layers[index](hidden[source], attention_mask=additive)
                    out = out[0] if isinstance(out, tuple) else out
                    errors.append(float(((out - hidden[source + 1])[valid] ** 2).mean()))
            scales = [round(c, 3) for c in init.merge_scales]
            print(f"ffn {ffn} {choice!s:6} c={scales} mse={[round(e, 4) for e in errors]}")


if __name__ == "__main__":
    custom = [float(x) for x in sys.argv[2].split(",")] if len(sys.argv) > 2 else None
    main(sys.argv[1], custom or ["mean", "none", "sum", "auto"])
