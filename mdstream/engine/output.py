"""What a step of the stream engine gives back, and the small time helpers the engine shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import polars as pl

from ..contract import columns as c
from ..contract import timeframes as tfm

NEVER = 2**62  # a due instant no window reaches (epoch us)


@dataclass
class EngineOutput:
    """What one step produced: candle rows (new and revised), quarantined ticks, and counts."""

    candles: pl.DataFrame
    late: pl.DataFrame  # quarantine rows: implausible times, beyond the revision horizon, written by an earlier run
    accepted: int = 0
    duplicates: int = 0  # exact repeats of a retained trade, and (replay) trades an earlier run already folded
    revisions: int = 0  # rows emitted again (a late trade, a gap found after emission, features that follow)
    late_trades: int = 0  # accepted trades that fell in an already emitted window
    quarantined_by: dict[str, int] = field(default_factory=dict)  # quarantine rows of this step by reason
    ticks: pl.DataFrame | None = None  # the accepted ticks themselves (each trade once, plausible)


def us_of(when: datetime) -> int:
    """Epoch microseconds of an aware datetime."""
    return tfm.epoch_us(when)


def first_us(frames: list[pl.DataFrame]) -> int | None:
    """The earliest event time (epoch us) among queued tick frames."""
    lows = [f.get_column(c.TIMESTAMP).dt.epoch("us").min() for f in frames]
    ints = [lo for lo in lows if isinstance(lo, int)]
    return min(ints) if ints else None


def width_us() -> pl.Expr:
    """Window length in us of the row's timeframe."""
    return pl.col(c.TIMEFRAME).replace_strict(tfm.TIMEFRAME_US, return_dtype=pl.Int64)


def dt_of(us: int) -> datetime:
    """An epoch-us integer as an aware datetime (only for plausible times)."""
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=us)
