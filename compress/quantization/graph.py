"""Small facts about ONNX graphs that quantization needs: node names, MatMul groups, scale sanity."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from compress.errors import ModelLoadError, StageError

LAYER = re.compile(r"layers?[./_](\d+)")


def load_onnx(path: Path, load_external_data: bool = True) -> onnx.ModelProto:
    """``onnx.load`` with a clear error for a missing, truncated or non-ONNX file."""
    try:
        return onnx.load(str(path), load_external_data=load_external_data)
    except Exception as error:  # protobuf DecodeError, OSError ...
        raise ModelLoadError(f"{path}: not a readable ONNX model ({type(error).__name__}: {error})") from None


def strip_value_info(source: Path, target: Path) -> Path:
    """Copy ``source`` without ``graph.value_info``: stale shape annotations break ORT's quantizer."""
    model = load_onnx(source)
    del model.graph.value_info[:]
    onnx.save(model, str(target))
    return target


def node_names(path: Path, op_types: Iterable[str] | None = None) -> list[str]:
    wanted = set(op_types) if op_types is not None else None
    graph = load_onnx(path, load_external_data=False).graph
    return [n.name for n in graph.node if wanted is None or n.op_type in wanted]


def check_node_names(requested: Iterable[str], path: Path, field: str = "exclude_nodes") -> None:
    """Unknown names would be silently ignored by ORT; fail instead, suggesting the closest real names."""
    known = node_names(path)
    unknown = [name for name in requested if name not in set(known)]
    if not unknown:
        return
    hints = []
    for name in unknown[:3]:
        close = difflib.get_close_matches(name, known, n=2, cutoff=0.5)
        hints.append(f"{name!r}" + (f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""))
    matmuls = node_names(path, {"MatMul"})[:4]
    raise StageError(
        f"quantize.{field}: {len(unknown)} name(s) are not nodes of {path.name}: {', '.join(hints)}; "
        f"MatMul nodes look like {', '.join(matmuls)} (names change when optimize: true fuses the graph)"
    )


def matmul_groups(
    path: Path, op_types: Iterable[str] = ("MatMul", "Gemm", "Attention")
) -> dict[str, list[str]]:
    """Quantizable nodes grouped by encoder layer and block (attention / ffn / other), in graph order.

    Sensitivity is measured per group rather than per node: a layer's attention or FFN MatMuls rise and
    fall together, and per-group trials keep the search to ~2 per layer.
    """
    groups: dict[str, list[str]] = {}
    for name in node_names(path, set(op_types)):
        layer = LAYER.search(name)
        if layer is None:
            key = "head" if re.search(r"classifier|pooler|pre_classifier|dense", name) else "other"
        else:
            block = "attention" if "attention" in name or "attn" in name else "ffn"
            key = f"layer{layer.group(1)}.{block}"
        groups.setdefault(key, []).append(name)
    return groups


def check_scales(path: Path) -> None:
    """A quantized graph whose scales are inf/nan/zero computes garbage; say which tensors and why."""
    model = load_onnx(path)
    bad = []
    for init in model.graph.initializer:
        if not init.name.endswith("_scale"):
            continue
        values = numpy_helper.to_array(init).astype(np.float64)
        if not np.all(np.isfinite(values)) or np.any(values == 0):
            bad.append(init.name)
    if bad:
        raise StageError(
            f"quantization produced {len(bad)} invalid (inf/nan/zero) scale(s), e.g. {', '.join(bad[:3])}; "
            "calibration saw non-finite or constant activations. Use calibration: minmax, more "
            "calibration_samples, or exclude the nodes that read those tensors"
        )
