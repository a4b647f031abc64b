"""Structured pruning (heads, head widths, FFN channels, layers, hidden width) for the ``prune`` stage."""
