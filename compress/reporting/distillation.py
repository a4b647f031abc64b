"""The report section for distilled students: teacher and student side by side, losses and weights used."""

from __future__ import annotations

from typing import Any


def _cell(variant: dict[str, Any] | None, key: str) -> str:
    if variant is None:
        return "-"
    value = variant.get(key)
    if key == "accuracy":
        return "-" if value is None else f"{100 * value:.2f}%"
    return "-" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def distillation_section(report: dict[str, Any]) -> list[str]:
    """Markdown lines for every variant carrying ``info['distillation']`` (none: no section)."""
    by_name = {v["name"]: v for v in report["variants"]}
    lines: list[str] = []
    for student in report["variants"]:
        facts = student.get("info", {}).get("distillation")
        if not facts:
            continue
        teacher = by_name.get(student["info"].get("teacher", ""))
        shape = facts["student"]
        losses = ", ".join(f"{name} x{weight:g}" for name, weight in facts["losses"].items())
        options = facts.get("loss_options", {})
        training = student["info"].get("training", {})
        lines += [
            f"## Distillation: {student['name']} from {teacher['name'] if teacher else '?'}",
            "",
            "| | teacher | student |",
            "|---|---|---|",
            f"| test accuracy | {_cell(teacher, 'accuracy')} | {_cell(student, 'accuracy')} |",
            f"| parameters | {_cell(teacher, 'parameters')} | {_cell(student, 'parameters')} |",
            f"| layers / heads / FFN / hidden | {_shape(facts.get('teacher_shape'))} | {_shape(shape)} |",
            "",
            f"- Losses (weights): **{losses}**; temperature {options.get('temperature')}, hard-label share "
            f"{options.get('hard_label_weight')}{_relations(facts)}.",
            f"- Init: {shape['init']}, teacher layers {shape.get('teacher_layers')}, merged-head scales "
            f"{shape.get('merge_scales')}{_annealing(shape)}; dropout {shape.get('dropout')}.",
            f"- Data: {_data(facts)}; teacher cache {facts['teacher_cache_mb']} MB.",
            f"- Training: {facts['seconds']:.0f} s in all, best dev accuracy "
            f"{100 * training.get('best_dev_accuracy', 0):.2f}% at epoch {training.get('best_epoch')}.",
            "",
        ]
    return lines


def _relations(facts: dict[str, Any]) -> str:
    if not facts["losses"].get("attention"):
        return ""
    return f", attention relations {facts.get('loss_options', {}).get('relations')}"


def _annealing(shape: dict[str, Any]) -> str:
    share = shape.get("anneal_heads")
    return f", heads merged gradually over the first {100 * share:g}% of the steps" if share else ""


def _data(facts: dict[str, Any]) -> str:
    parts = [f"{facts['train_examples']} train texts", f"{facts['augmented_examples']} teacher-labelled augmented copies"]
    if facts.get("transfer_examples"):
        parts.append(f"{facts['transfer_examples']} teacher-labelled transfer texts ({facts['transfer']['corpus']})")
    return " + ".join(parts)


def _shape(shape: dict[str, Any] | None) -> str:
    if not shape:
        return "-"
    return f"{shape['layers']} / {shape['heads']} / {shape['ffn']} / {shape['hidden']}"
