"""The narrow interface every sink implements."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, cast

import polars as pl

from ..contract import columns as c
from ..contract import schema
from ..contract.errors import ConfigError
from ..contract.timeframes import US_PER_DAY

# What a batch holds; a sink stores each kind in its own table.
CANDLES = "candles"
TICKS = "ticks"
QUARANTINE = "quarantine"
KINDS = (CANDLES, TICKS, QUARANTINE)
SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    CANDLES: schema.CANDLE_SCHEMA,
    TICKS: schema.TICK_SCHEMA,
    QUARANTINE: schema.QUARANTINE_SCHEMA,
}


# Capabilities a sink declares in its `capabilities` set (what jobs may ask of it beyond write/flush/close).
WRITE_DAY = "write_day"  # DaySink: replaces one historical day atomically
WRITE_DAYS = "write_days"  # DaySink with write_days: replaces several series-days in one commit
READ_BACK = "read_back"  # CandleReader: stored candles can be read back (warm starts)

# Rows of each series a warm start reads back at least (beyond the newest window's whole UTC day): enough for every
# recursive feature (EMAs, RSI, MACD) to have forgotten where it started, to ~1e-20.
WARM_ROWS = 600


class Sink(Protocol):
    """Takes frames of one kind (candles, ticks, quarantine); durable only after `flush`."""

    capabilities: frozenset[str]

    def write(self, kind: str, frame: pl.DataFrame) -> None:
        """Queue `frame` (conforming to that kind's schema) for writing."""

    def flush(self) -> None:
        """Make everything written so far durable and visible to readers."""

    def close(self) -> None:
        """Flush and release resources."""


class DaySink(Sink, Protocol):
    """A sink that can replace one historical day atomically (backfill)."""

    def write_day(self, exchange: str, symbol: str, day: str, frames: dict[str, pl.DataFrame]) -> None:
        """Replace everything of (exchange, symbol, day) with `frames` by kind, all or nothing."""


# One series-day a DaySink replaces: (exchange, symbol, UTC day as YYYY-MM-DD, frames by kind).
Day = tuple[str, str, str, dict[str, pl.DataFrame]]


class DaysSink(DaySink, Protocol):
    """A DaySink that replaces several series-days in one commit (capability WRITE_DAYS)."""

    def write_days(self, days: Sequence[Day]) -> None:
        """Replace each (exchange, symbol, day) with its frames, all or nothing together."""


def write_days(sink: DaySink, days: Sequence[Day]) -> None:
    """Replace each series-day with its frames: all in one commit where the sink can (WRITE_DAYS; a commit costs
    more than a small day's rows), else one day after another, each whole or not at all."""
    if len(days) > 1 and can(sink, WRITE_DAYS):
        cast(DaysSink, sink).write_days(days)
        return
    for exchange, symbol, day, frames in days:
        sink.write_day(exchange, symbol, day, frames)


class CandleReader(Protocol):
    """A sink whose stored candles can be read back: a restarted stream and a backfill continue from them."""

    def read_candles(self, *, exchange: str, symbols: Sequence[str] | None, timeframes: Sequence[str],
                     rows: int = WARM_ROWS, before: datetime | None = None) -> pl.DataFrame:
        """The highest revision of stored windows of `exchange` (`symbols`, all when None) and `timeframes`: per
        series the newest `rows` windows and every window since the UTC midnight of its newest one; only windows
        starting before `before` when given. Candle schema; empty when nothing is stored."""


def can(sink: Sink, capability: str) -> bool:
    """Whether `sink` declares `capability` (WRITE_DAY, READ_BACK)."""
    return capability in sink.capabilities


def newest_windows(latest: pl.LazyFrame, rows: int) -> pl.LazyFrame:
    """Of candles holding one row per window (candles_latest), what read_candles returns: per series the newest
    `rows` windows and every window since the UTC midnight of its newest one."""
    series = [c.EXCHANGE, c.SYMBOL, c.TIMEFRAME]
    ts = pl.col(c.TIMESTAMP_IN).dt.epoch("us")
    rank = ts.rank("ordinal", descending=True).over(series)
    day = ts.max().over(series) // US_PER_DAY * US_PER_DAY
    return latest.filter((rank <= rows) | (ts >= day))


class KindBuffer:
    """Frames a sink was given, queued per kind until its flush writes them (kept if that flush fails)."""

    def __init__(self) -> None:
        self.frames: dict[str, list[pl.DataFrame]] = {kind: [] for kind in KINDS}

    def add(self, kind: str, frame: pl.DataFrame) -> None:
        """Queue `frame` of `kind`; an unknown kind is a ConfigError, an empty frame is ignored."""
        if kind not in KINDS:
            raise ConfigError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
        if frame.height:
            self.frames[kind].append(frame)

    def pending(self) -> dict[str, pl.DataFrame]:
        """One frame per kind that has queued rows (columns unified by name)."""
        return {kind: pl.concat(frames, how="diagonal_relaxed") for kind, frames in self.frames.items() if frames}

    def clear(self) -> None:
        """Forget everything queued (after it was written)."""
        self.frames = {kind: [] for kind in KINDS}
