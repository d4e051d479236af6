"""Feed facts every layer shares: known gaps in the data and the chunks a source hands on."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

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
    ids: tuple[int, int] | None = None  # a trade-id jump: the last id before and the first after (consecutive ids)


@dataclass
class SourceChunk:
    """A small piece a source decoded (one or a few messages); the batcher groups chunks into batches.

    Every record a source takes in is accounted for in exactly one place:
    received = ticks + quarantine rows + duplicates + sum(ignored.values()).
    A record is a trade for trade messages (a message may carry several) and a whole message otherwise.
    """

    ticks: pl.DataFrame | None = None
    quarantine: pl.DataFrame | None = None
    gaps: list[FeedGap] = field(default_factory=list)
    received: int = 0  # records taken in for this chunk
    duplicates: int = 0  # trades dropped as exact repeats of one already accepted
    ignored: dict[str, int] = field(default_factory=dict)  # records that are not trades, by message type

    @property
    def rows(self) -> int:
        """Number of tick rows in the chunk."""
        return 0 if self.ticks is None else self.ticks.height
