"""A latency setting: the input shape one set of timings was taken at, ``b{batch}_s{seq}`` in report.json."""

from __future__ import annotations

import re
from dataclasses import dataclass

_KEY = re.compile(r"b(\d+)_s(\d+)")


@dataclass(frozen=True, order=True)
class Setting:
    batch: int
    seq: int

    @property
    def key(self) -> str:
        """How report.json names it: ``b1_s128``."""
        return f"b{self.batch}_s{self.seq}"

    @classmethod
    def parse(cls, key: str) -> Setting:
        match = _KEY.fullmatch(key)
        if match is None:
            raise ValueError(f"not a latency setting: {key!r} (expected b<batch>_s<seq>, e.g. b1_s128)")
        return cls(int(match[1]), int(match[2]))

    def __str__(self) -> str:
        return self.key
