"""The narrow interface every sink implements."""

from __future__ import annotations

from typing import Protocol

import polars as pl

# What a batch holds; a sink stores each kind in its own table.
CANDLES = "candles"
TICKS = "ticks"
QUARANTINE = "quarantine"
KINDS = (CANDLES, TICKS, QUARANTINE)


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
