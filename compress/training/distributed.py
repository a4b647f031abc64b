"""Data-parallel training with ``torch.distributed``: one process per CPU core group or GPU.

``torchrun --nproc_per_node 2 -m compress run RECIPE`` sets ``WORLD_SIZE``/``RANK``; the training loop
then joins a process group (gloo on CPU, nccl on GPU), wraps the model in ``DistributedDataParallel``
and gives each process its share of every batch. Recipes do not change.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from torch import nn


def launched_distributed() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def ensure_process_group() -> None:
    """Join the process group torchrun described in the environment (once); no-op for a single process."""
    import torch
    import torch.distributed as dist

    if launched_distributed() and dist.is_available() and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")


def rank_and_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def follower_run_dir(run_dir: Path) -> Path | None:
    """Under torchrun, where a non-main process keeps its scratch copy of the run (``None`` on rank 0).

    Only rank 0 writes the real run directory; the others run the stages up to the last training stage
    (they must rebuild the same inputs to train their shards) in a sibling directory, then stop.
    """
    if not launched_distributed() or is_main_process():
        return None
    return run_dir.with_name(f"{run_dir.name}.rank{os.environ.get('RANK', '0')}")


def is_main_process() -> bool:
    if launched_distributed():
        return int(os.environ.get("RANK", "0")) == 0
    return rank_and_world()[0] == 0


def wrap(model: nn.Module) -> nn.Module:
    """``DistributedDataParallel(model)`` inside a process group of more than one process, else ``model``."""
    if rank_and_world()[1] == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model)


def shard(chunk: np.ndarray) -> np.ndarray | None:
    """This process's share of a global batch; ``None`` when the batch cannot give every process one."""
    rank, world = rank_and_world()
    if len(chunk) < world:
        return None
    return chunk[rank::world]
