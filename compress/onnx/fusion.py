"""ORT transformer fusions (attention, LayerNorm, GELU), kept only when the fused graph agrees with the unfused one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx import numpy_helper
from pydantic import Field

from compress.core.files import atomic_path
from compress.core.options import Options
from compress.runtimes import Inputs, OnnxPredictor

if TYPE_CHECKING:
    from compress.tasks.base import Examples


class FusionOptions(Options):
    """Recipe fields of the stages that can fuse an ONNX graph (``export``, ``quantize``).

    Whether fusing pays depends on the graph and was measured on one CPU only (an AMD EPYC with
    AVX512-VNNI and AVX512-BF16, ONNX Runtime 1.31, 2 threads): fused, the teacher's FP32 graph ran 1.03x
    faster at b1 s128 (1.09x at s47), the pruned teacher's 1.08x (1.17x), the edge student's INT8 1.05x
    (1.18x), while the single-head student's FP32 graph ran slower (ORT's Attention kernel with one head of
    384), so ``distill-int8`` exports it unfused. A run checks the fused graph's logits, not its speed: on
    another CPU, time both graphs with ``compress bench``.
    """

    optimize: bool = Field(
        False, description="Fuse attention/LayerNorm/GELU (ORT transformer optimizer), checked against the unfused graph."
    )
    optimize_tolerance: float = Field(1e-3, gt=0, description="Largest |logit diff| allowed for the fused graph.")


def fuse_checked(
    source: Path, stage_dir: Path, batches: Sequence[Inputs], tolerance: float, log: Callable[[str], object]
) -> tuple[Path, dict[str, Any]]:
    """Fuse ``source`` into ``stage_dir/fused.onnx`` and check it on ``batches`` (the task's inputs for a
    few test examples, e.g. :func:`check_batches`).

    Returns the path to use (the fused graph, or ``source`` when fusion did not apply) and the fusion info.
    """
    fused = fuse_transformer(source, stage_dir / "fused.onnx", batches, tolerance)
    log(
        f"    fusion: {fused['fused_operators'] or 'nothing fused'}; "
        f"max |logit diff| {fused['max_abs_logit_diff']:.2e}"
        + ("" if fused["used"] else f"; kept the unfused graph ({fused['reason']})")
    )
    return (stage_dir / "fused.onnx" if fused["used"] else source), fused


def check_batches(examples: Examples) -> list[Inputs]:
    """Three batches of 16 examples (0-15, 16-31, 32-47) to compare a fused graph with the unfused one."""
    return [examples.collate(range(start, min(start + 16, len(examples)))) for start in (0, 16, 32)]


def fuse_transformer(
    source: Path, target: Path, batches: Sequence[Inputs], tolerance: float, fusion_type: str = "bert"
) -> dict[str, Any]:
    """Fuse attention / LayerNorm / GELU into ``target`` and compare its logits with ``source``'s.

    Returns ``{"used": bool, "fused_operators": {...}, "max_abs_logit_diff": float, "reason": str}``; the
    caller keeps the unfused model when ``used`` is false (nothing fused, or the outputs disagree).
    Attention fuses only for eager attention exported with ``dynamo=False`` (what ``export`` does), once
    :func:`explicit_head_counts` has written each layer's head count into its graph. ``fusion_type`` is
    the ORT optimizer's ``model_type``, a family adapter's ``fusion_type`` (``bert`` for every registered
    family today: BERT, RoBERTa and DistilBERT graphs all fuse as ``bert``).
    """
    from onnxruntime.transformers.fusion_options import FusionOptions as OrtFusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    graph = onnx.load(str(source))
    explicit_head_counts(graph)
    options = OrtFusionOptions(fusion_type)
    # EmbedLayerNormalization would swallow the word-embedding Gather, which INT8 quantization stores in
    # 8 bits: fused then quantized, the edge student's bundle grew from 8.3 to 26.6 MB. The lookup is a
    # negligible share of latency, so it stays a Gather (+ LayerNormalization).
    options.enable_embed_layer_norm = False
    # SkipLayerNormalization is slower than LayerNormalization + Add on ONNX Runtime's CPU provider on
    # both CPUs measured (see CPU_DISABLED_FUSIONS), so the fused graph keeps them apart.
    options.enable_skip_layer_norm = False
    optimized = optimize_model(
        graph, model_type=fusion_type, num_heads=0, hidden_size=0, opt_level=0, optimization_options=options
    )
    fused = {k: int(v) for k, v in optimized.get_fused_operator_statistics().items() if v}
    with atomic_path(target) as tmp:
        optimized.save_model_to_file(str(tmp))
    before, after = OnnxPredictor(source), OnnxPredictor(target)
    worst = max(float(np.abs(before.run(b) - after.run(b)).max()) for b in batches)
    info: dict[str, Any] = {"fused_operators": fused, "max_abs_logit_diff": worst, "used": True, "reason": ""}
    if not fused:
        info.update(used=False, reason="nothing to fuse in this graph")
    elif worst > tolerance:
        info.update(used=False, reason=f"fused outputs differ by {worst:.2e} (> {tolerance:.0e})")
    if not info["used"]:
        target.unlink(missing_ok=True)
    return info


def explicit_head_counts(graph: onnx.ModelProto) -> int:
    """Write each attention layer's head count into its Q/K/V reshapes; returns how many were rewritten.

    Hugging Face attention reshapes to ``(batch, seq, -1, head_size)``, so the exported graph does not
    say how many heads a layer has and ORT's fuser gives up on attention. The count is the projection's
    output width / ``head_size``, read per layer, so pruned models with different head counts per layer
    fuse too. The graph computes the same values before and after.
    """
    constants = {t.name: numpy_helper.to_array(t) for t in graph.graph.initializer}
    for node in graph.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    producers = {out: node for node in graph.graph.node for out in node.output}
    rewritten = 0
    for node in graph.graph.node:
        concat = producers.get(node.input[1]) if node.op_type == "Reshape" and len(node.input) > 1 else None
        if concat is None or concat.op_type != "Concat" or len(concat.input) != 4:
            continue
        heads, head_size = (constants.get(name) for name in concat.input[2:])
        if heads is None or head_size is None or heads.size != 1 or heads.item() != -1 or head_size.item() <= 0:
            continue
        width = _projection_width(node.input[0], producers, constants)
        if width is None or width % int(head_size.item()):
            continue
        name = f"{concat.name or concat.output[0]}_heads"
        count = np.asarray([width // int(head_size.item())], dtype=heads.dtype).reshape(heads.shape)
        graph.graph.initializer.append(numpy_helper.from_array(count, name))
        concat.input[2] = name
        rewritten += 1
    return rewritten


def _projection_width(tensor: str, producers: dict, constants: dict) -> int | None:
    """Output width of the MatMul (optionally followed by a bias Add) that produces ``tensor``."""
    node = producers.get(tensor)
    if node is not None and node.op_type == "Add":
        node = next((producers[i] for i in node.input if i in producers and producers[i].op_type == "MatMul"), None)
    if node is None or node.op_type != "MatMul":
        return None
    weight = constants.get(node.input[1])
    return int(weight.shape[-1]) if weight is not None and weight.ndim == 2 else None
