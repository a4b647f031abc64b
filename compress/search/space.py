"""Candidate student shapes: what the search may build from a teacher, within its family's constraints."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from compress.models.families.base import family_for
from compress.search.config import SearchSpaceOptions, ShapeOptions

DEFAULT_MAX_LAYERS = 4
FFN_FRACTIONS = (1 / 6, 1 / 3, 1 / 2, 1.0)


@dataclass(frozen=True, order=True)
class StudentShape:
    layers: int
    heads: int
    ffn: int
    hidden: int

    def name(self, teacher_hidden: int | None = None) -> str:
        """``L2-H1-F512`` (plus ``-D256`` where the hidden width differs from the teacher's)."""
        width = "" if teacher_hidden in (None, self.hidden) else f"-D{self.hidden}"
        return f"L{self.layers}-H{self.heads}-F{self.ffn}{width}"

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def covers(self, other: StudentShape) -> bool:
        """At least as large as ``other`` in every dimension (so expected at least as accurate)."""
        return all(getattr(self, k) >= getattr(other, k) for k in ("layers", "heads", "ffn", "hidden"))


def teacher_dims(config: Any) -> dict[str, int]:
    return {
        "layers": config.num_hidden_layers,
        "heads": config.num_attention_heads,
        "ffn": family_for(config).ffn_width(config),
        "hidden": config.hidden_size,
    }


def shape_of(options: ShapeOptions, teacher_config: Any) -> StudentShape:
    dims = teacher_dims(teacher_config)
    return StudentShape(options.layers, options.heads, options.ffn or dims["ffn"], options.hidden or dims["hidden"])


def default_ffn(teacher_ffn: int) -> list[int]:
    widths = {max(64, round(teacher_ffn * f / 64) * 64) for f in FFN_FRACTIONS}
    return sorted(w for w in widths if w <= teacher_ffn)


def candidate_shapes(space: SearchSpaceOptions, teacher_config: Any) -> tuple[list[StudentShape], list[str]]:
    """Every shape of the space the teacher's family can build, and a note for each value left out.

    Constraints: depth at most the teacher's (students copy teacher layers); heads divide the hidden width and
    the teacher's head count (head annealing merges the teacher's heads in equal groups); FFN at most the
    teacher's (its most important neurons are kept); a hidden width other than the teacher's only with random
    initialisation, so it is refused here unless listed explicitly.
    """
    dims = teacher_dims(teacher_config)
    notes: list[str] = []
    layers = space.layers or list(range(1, min(DEFAULT_MAX_LAYERS, dims["layers"]) + 1))
    for value in [v for v in layers if v > dims["layers"]]:
        notes.append(f"layers {value} left out: the teacher has {dims['layers']}")
    layers = [v for v in layers if v <= dims["layers"]]
    ffn = space.ffn or default_ffn(dims["ffn"])
    for value in [v for v in ffn if v > dims["ffn"]]:
        notes.append(f"ffn {value} left out: wider than the teacher's {dims['ffn']}")
    ffn = [v for v in ffn if v <= dims["ffn"]]
    hidden = space.hidden or [dims["hidden"]]
    shapes = []
    for width in hidden:
        heads = []
        for value in space.heads:
            if width % value or dims["heads"] % value:
                notes.append(
                    f"heads {value} left out at hidden {width}: must divide the hidden width and the "
                    f"teacher's {dims['heads']} heads"
                )
            else:
                heads.append(value)
        shapes += [StudentShape(depth, h, f, width) for depth in layers for h in heads for f in ffn]
    return sorted(set(shapes)), notes


def frontier(shapes: list[StudentShape]) -> list[StudentShape]:
    """The shapes no other shape of the list covers (larger or equal in every dimension): within a budget
    these are the ones worth training, a covered shape has less of everything."""
    return [s for s in shapes if not any(o != s and o.covers(s) for o in shapes)]
