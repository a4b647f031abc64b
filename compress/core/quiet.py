"""Silence third-party start-up chatter that users cannot act on (torchao kernels, pytree notices)."""

from __future__ import annotations

import logging
import os
import warnings


def silence_library_noise() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    # neural_compressor is not listed: INC resets its logger from $LOGLEVEL as it is imported, so
    # compress.quantization.inc.quiet_inc_logger silences it there.
    for name in ("torchao", "torch.utils._pytree", "torch.onnx"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*might cause the trace to be incorrect.*")
    warnings.filterwarnings("ignore", message=".*Exporting aten::index operator.*")
    warnings.filterwarnings("ignore", message=".*Converting a tensor to a Python.*")
    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime.quantization logs advice on the root logger
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass
