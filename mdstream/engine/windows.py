"""Ticks -> trade windows of the shortest timeframe, the only input the engine core takes from ticks."""

from __future__ import annotations

import polars as pl

from ..kernel.candles import series_windows, sparse_many
from ..kernel.grid import SPARSE_COLUMNS
from .state import OPEN_SCHEMA


def trade_windows(ticks: pl.DataFrame | list[pl.DataFrame], base: str, *, single_series: bool = False,
                  instruments: pl.DataFrame | None = None) -> pl.DataFrame:
    """Windows of `base` with at least one trade (kernel sparse rows), volumes by each series' instrument in
    `instruments` (contract/instruments.INSTRUMENT_SCHEMA; unlisted: linear, size 1). A list holds frames of one
    series each (as split_series returns them); each takes the single-series path (an O(n) order check, runs of
    sorted buckets); many small series in one frame (a stream batch) are aggregated in one vectorised pass."""
    if isinstance(ticks, pl.DataFrame):
        if ticks.height == 0:
            return pl.DataFrame(schema=OPEN_SCHEMA)
        if not single_series:
            return sparse_many(ticks, base, instruments).select(SPARSE_COLUMNS)
        ticks = [ticks]
    parts = [series_windows(part, base, instruments) for part in ticks if part.height]
    if not parts:
        return pl.DataFrame(schema=OPEN_SCHEMA)
    return pl.concat(parts) if len(parts) > 1 else parts[0]
