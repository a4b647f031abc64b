"""Vocabulary pruning and how closely a pruned vocabulary follows the full one."""
