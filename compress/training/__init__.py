"""The training loop, knowledge-distillation losses, checkpoints, precision, data parallelism."""
