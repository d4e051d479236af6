"""The narrow interface between live sources and the stream job: batches of ticks, quarantine and gaps."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import AsyncIterator, Protocol

import polars as pl

from .. import schema
from ..clock import Clock

# FeedGap reasons (the id-jump reason is formatted with the two ids).
GAP_DISCONNECT = "disconnect"
GAP_SILENT = "silent feed"
GAP_STARTUP = "startup"


def id_jump_reason(last_id: int, next_id: int) -> str:
    """The reason text of a trade-id jump, e.g. "trade id jump 123->130"."""
    return f"trade id jump {last_id}->{next_id}"


@dataclass(frozen=True)
class FeedGap:
    """Data known missing for these symbols between two event times."""

    exchange: str
    symbols: tuple[str, ...]
    start: datetime  # last event time seen before the outage (UTC)
    end: datetime | None  # first event time after it resumed (None while still down)
    reason: str


@dataclass
class SourceChunk:
    """A small piece a source decoded (one or a few messages); the batcher groups chunks into batches."""

    ticks: pl.DataFrame | None = None
    quarantine: pl.DataFrame | None = None
    gaps: list[FeedGap] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Number of tick rows in the chunk."""
        return 0 if self.ticks is None else self.ticks.height


@dataclass
class SourceBatch:
    """What the stream job processes at once: ticks, rejected rows and known gaps, closed at `received_at`."""

    ticks: pl.DataFrame  # conforms to schema.TICK_SCHEMA (local_timestamp = receive time)
    quarantine: pl.DataFrame  # schema.QUARANTINE_SCHEMA, may be empty
    gaps: list[FeedGap]
    received_at: datetime  # clock time when the batch was closed


class Source(Protocol):
    """A producer of tick batches; `batches` is an async generator that ends when the input ends."""

    exchange: str

    def batches(self, clock: Clock) -> AsyncIterator[SourceBatch]:
        """Micro-batches of ticks, timed by `clock`."""


def empty_ticks() -> pl.DataFrame:
    """An empty frame with the tick schema."""
    return schema.empty(schema.TICK_SCHEMA)


def empty_quarantine() -> pl.DataFrame:
    """An empty frame with the quarantine schema."""
    return schema.empty(schema.QUARANTINE_SCHEMA)
