"""Windows folded ahead of their closing time, so a live stream emits them on time rather than a fold later.

Shortly before the earliest open window is due (its end + lateness), the engine folds what it holds as it would at
that instant and keeps the result aside. When the instant comes it emits that result, provided nothing it folded
could have changed since: no gap learnt or healed, and no trade admitted meanwhile that falls in a window it built.
Otherwise the result is dropped and the step folds as always. Same ticks, same candles: only the timing moves.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from .output import first_us
from .state import SeriesState


@dataclass(frozen=True)
class Prepared:
    """A fold done ahead: the clock time it is due (us), the watermark it was built to (us), how many queued batches
    it took in, the gap epoch it saw, its candles, the state after it and the late ticks it counted."""

    at_us: int
    mark_us: int
    held: int
    epoch: int
    candles: pl.DataFrame
    state: SeriesState
    late: pl.DataFrame | None


def still_valid(prepared: Prepared, pending: list[pl.DataFrame], epoch: int, base_us: int) -> bool:
    """Whether nothing since `prepared` reaches a window it built: the gaps are as they were, and every trade queued
    after it lies at or past the first base window it left open (floor(mark / base) * base, us)."""
    if epoch != prepared.epoch:
        return False
    lo = first_us(pending[prepared.held:])
    return lo is None or lo >= prepared.mark_us // base_us * base_us
