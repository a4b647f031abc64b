"""Optional graph optimisation before quantizing: ORT's transformer fusions, checked for faithfulness."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from compress.evaluation.runners import OnnxPredictor
from compress.io_utils import atomic_path


def fuse_transformer(
    source: Path, target: Path, batches: Sequence[tuple[np.ndarray, np.ndarray]], tolerance: float
) -> dict[str, Any]:
    """Fuse attention / LayerNorm / GELU into ``target`` and compare its logits with ``source``'s.

    Returns ``{"used": bool, "fused_operators": {...}, "max_abs_logit_diff": float, "reason": str}``; the
    caller keeps the unfused model when ``used`` is false (nothing fused, or the outputs disagree).
    Attention fuses only for eager attention exported with ``dynamo=False`` (what ``export`` does).
    """
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(str(source), model_type="bert", num_heads=0, hidden_size=0, opt_level=0)
    fused = {k: int(v) for k, v in optimized.get_fused_operator_statistics().items() if v}
    with atomic_path(target) as tmp:
        optimized.save_model_to_file(str(tmp))
    before, after = OnnxPredictor(source), OnnxPredictor(target)
    worst = max(float(np.abs(before.logits(*b) - after.logits(*b)).max()) for b in batches)
    info: dict[str, Any] = {"fused_operators": fused, "max_abs_logit_diff": worst, "used": True, "reason": ""}
    if not fused:
        info.update(used=False, reason="nothing to fuse in this graph")
    elif worst > tolerance:
        info.update(used=False, reason=f"fused outputs differ by {worst:.2e} (> {tolerance:.0e})")
    if not info["used"]:
        target.unlink(missing_ok=True)
    return info
