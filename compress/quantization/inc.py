"""Intel Neural Compressor 3.x (PyTorch API): static W8A8 through PT2E, optionally accuracy-aware autotune.

INC 3.x has no ONNX backend, so this path starts from the PyTorch model. ``autotune`` returns a model
even when no trial met ``tolerable_loss`` (and ``None`` when it ran out of trials early), so callers must
verify accuracy themselves; :func:`quantize_pt2e` reports what INC did and leaves that check to them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from compress.errors import StageError
from compress.models.forward import LogitsOnly
from compress.onnx.export import use_eager_attention

Batch = dict[str, np.ndarray]
"""Named model inputs, as the task collates them."""


@dataclass
class IncResult:
    model: nn.Module
    """The converted PT2E graph module (QDQ form; ``torch.compile`` turns it into INT8 kernels)."""
    program: torch.export.ExportedProgram
    """The same model exported again, ready for ``torch.export.save``."""
    info: dict[str, Any]


def _dynamic_shapes(model: nn.Module, inputs: int) -> tuple[dict[int, Any], ...]:
    """Dynamic batch and sequence axes for each of ``inputs`` positional inputs."""
    positions = getattr(getattr(model, "config", None), "max_position_embeddings", 512)
    batch = torch.export.Dim("batch", min=1, max=1024)
    seq = torch.export.Dim("sequence", min=2, max=int(positions))
    return tuple({0: batch, 1: seq} for _ in range(inputs))


def tuning_configs() -> list:
    """INC's default INT8 static tuning space (symmetric/asymmetric activations x KL/minmax), in its order."""
    from neural_compressor.torch.quantization import StaticQuantConfig

    return StaticQuantConfig.get_config_set_for_tuning().expand()


def _as_tensors(batch: Batch) -> tuple[torch.Tensor, ...]:
    """A batch of named inputs as positional tensors, in the task's input order (the collated order)."""
    return tuple(torch.from_numpy(array) for array in batch.values())


def quiet_inc_logger() -> None:
    """INC sets its logger to ``$LOGLEVEL`` (default INFO) when first imported, after our start-up
    silencing ran: a run would print ~30 INC INFO/WARNING lines per quantization. Errors still show."""
    import logging
    import os
    import warnings

    previous = os.environ.get("LOGLEVEL")
    os.environ["LOGLEVEL"] = "ERROR"  # read by INC's logger as it is created
    try:
        import neural_compressor.torch.quantization  # noqa: F401
    finally:
        if previous is None:
            os.environ.pop("LOGLEVEL", None)
        else:
            os.environ["LOGLEVEL"] = previous
    logging.getLogger("neural_compressor").setLevel(logging.ERROR)  # also when INC was imported earlier
    # set here, at the point of use, so it holds even where warning filters were reset since start-up
    warnings.filterwarnings("ignore", message=".*side effects happened in the model.forward.*")


def quantize_pt2e(
    model: nn.Module,
    calibration: Sequence[Batch],
    evaluate: Callable[[nn.Module], float] | None = None,
    tolerable_loss: float | None = None,
) -> IncResult:
    """Export ``model`` for PT2E, then quantize it (static W8A8, or ``autotune`` when ``evaluate`` is given).

    ``tolerable_loss`` is INC's *relative* loss: ``(baseline - accuracy) / baseline``.
    """
    quiet_inc_logger()
    from neural_compressor.torch.export import export
    from neural_compressor.torch.quantization import (
        StaticQuantConfig,
        TuningConfig,
        autotune,
        convert,
        prepare,
    )

    if not calibration:
        raise StageError("quantize (inc): no calibration batches")
    use_eager_attention(model)
    wrapper = LogitsOnly(model, list(calibration[0])).eval()
    example = _as_tensors(calibration[0])
    shapes = _dynamic_shapes(model, len(example))
    try:
        exported = export(wrapper, example, dynamic_shapes=(shapes,))  # nested: LogitsOnly takes ``*inputs``
    except RuntimeError as error:
        raise StageError(
            f"quantize (inc): torch.export could not trace the model for PT2E ({error})"
        ) from None

    def calibrate(prepared: nn.Module) -> None:
        with torch.no_grad():
            for batch in calibration:
                prepared(*_as_tensors(batch))

    info: dict[str, Any] = {
        "backend": "inc",
        "algorithm": "pt2e static W8A8",
        "calibration_batches": len(calibration),
    }
    with torch.no_grad():
        if evaluate is None:
            prepared = prepare(exported, StaticQuantConfig())
            calibrate(prepared)
            quantized = convert(prepared)
        else:
            configs = tuning_configs()
            tuning = TuningConfig(
                config_set=configs, tolerable_loss=tolerable_loss or 0.01, max_trials=len(configs)
            )
            quantized = autotune(exported, tuning, eval_fn=evaluate, run_fn=calibrate, example_inputs=example)
            info.update(autotune=True, tolerable_loss_relative=tolerable_loss, max_trials=len(configs))
            if quantized is None:
                raise StageError(
                    "quantize (inc): autotune returned no model (every trial failed to quantize)"
                )
    program = torch.export.export(quantized, example, dynamic_shapes=shapes)  # the graph takes them flat
    return IncResult(quantized, program, info)
