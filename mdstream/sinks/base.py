"""The narrow interface every sink implements."""

from __future__ import annotations

from typing import Protocol

import polars as pl

from ..contract import schema
from ..contract.errors import ConfigError

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


class Sink(Protocol):
    """Takes frames of one kind (candles, ticks, quarantine); durable only after `flush`."""

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
