"""What the benchmark modules share: a table row, the run's mode, figure formatting."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Config", "Row", "mb", "rate", "spread", "verdict"]


@dataclass
class Row:
    """One line of the results table."""

    bench: str
    name: str
    figure: str
    baseline: str
    ratio: str
    target: str
    result: str  # PASS, FAIL, SKIP, ERROR or INFO
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Config:
    quick: bool

    @property
    def mode(self) -> str:
        return "quick" if self.quick else "full"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def spread(values: Sequence[float], unit: str, digits: int = 0) -> str:
    """A figure cell: ``median unit (n=5, min-max)``."""

    def num(value: float) -> str:
        return f"{value:,.{digits}f}"

    median = f"{num(statistics.median(values))} {unit}"
    if len(values) == 1:
        return f"{median} (n=1)"
    return f"{median} (n={len(values)}, {num(min(values))}-{num(max(values))})"


def rate(value: float) -> str:
    return f"{value:,.0f} ev/s"


def mb(value: float) -> str:
    return f"{value:,.1f} MB"
