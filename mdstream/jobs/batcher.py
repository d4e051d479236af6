"""Micro-batching: groups the small chunks a source decodes into batches closed by time or by size."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import polars as pl

from ..contract import defaults as d
from ..contract.clock import Clock
from ..contract.errors import ConfigError
from ..contract.feed import FeedGap, SourceChunk
from ..contract.schema import empty_quarantine, empty_ticks

# Upper bound of one real-time wait, so a clock moved by hand (replays, tests) is noticed promptly.
_MAX_WAIT_S = 0.05


@dataclass
class SourceBatch:
    """What the stream job processes at once: ticks, rejected rows and known gaps, closed at `received_at`, with
    the source's accounting of its chunks: received = ticks + quarantine rows + duplicates + sum(ignored)."""

    ticks: pl.DataFrame  # conforms to schema.TICK_SCHEMA (local_timestamp = receive time)
    quarantine: pl.DataFrame  # schema.QUARANTINE_SCHEMA, may be empty
    gaps: list[FeedGap]
    received_at: datetime  # clock time when the batch was closed
    received: int = 0  # records the source took in
    duplicates: int = 0  # trades the source dropped as repeats
    ignored: dict[str, int] = field(default_factory=dict)  # records that are not trades, by message type


class _Buffer:
    """Chunks gathered since the last batch."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Nothing gathered."""
        self.ticks: list[pl.DataFrame] = []
        self.quarantine: list[pl.DataFrame] = []
        self.gaps: list[FeedGap] = []
        self.rows = 0
        self.received = 0
        self.duplicates = 0
        self.ignored: dict[str, int] = {}

    def add(self, chunk: SourceChunk) -> None:
        """Append one chunk (frames are kept as separate chunks, not copied)."""
        if chunk.ticks is not None and chunk.ticks.height:
            self.ticks.append(chunk.ticks)
            self.rows += chunk.ticks.height
        if chunk.quarantine is not None and chunk.quarantine.height:
            self.quarantine.append(chunk.quarantine)
        self.gaps.extend(chunk.gaps)
        self.received += chunk.received
        self.duplicates += chunk.duplicates
        for kind, count in chunk.ignored.items():
            self.ignored[kind] = self.ignored.get(kind, 0) + count

    def __bool__(self) -> bool:
        return bool(self.ticks or self.quarantine or self.gaps or self.received)

    def batch(self, clock: Clock) -> SourceBatch:
        """The buffered data as one batch closed now; the buffer is emptied."""
        ticks = pl.concat(self.ticks, rechunk=False) if self.ticks else empty_ticks()
        quarantine = pl.concat(self.quarantine, rechunk=False) if self.quarantine else empty_quarantine()
        out = SourceBatch(ticks=ticks, quarantine=quarantine, gaps=self.gaps, received_at=clock.now(),
                          received=self.received, duplicates=self.duplicates, ignored=self.ignored)
        self.clear()
        return out


Due = Callable[[], "datetime | None"]  # when the consumer next needs a batch, whatever arrives (e.g. a window closes)


def micro_batches(
    source_chunks: AsyncIterator[SourceChunk],
    *,
    clock: Clock,
    flush_interval: float = d.FLUSH_INTERVAL_S,
    max_rows: int = d.MAX_ROWS,
    due: Due | None = None,
) -> AsyncIterator[SourceBatch]:
    """Batches of the chunks of `source_chunks`: one every `flush_interval` clock seconds, sooner at `max_rows`,
    and at the clock time `due()` names (a window's end + lateness: it closes on time, not at the next tick).

    A quiet interval still yields an empty batch so the consumer can advance its watermark; when the clock
    jumps over several intervals one batch covers them all. A batch may exceed `max_rows` by at most one chunk.
    The generator ends after the source ends, with a last batch of whatever was still buffered.
    """
    if flush_interval <= 0 or max_rows <= 0:
        raise ConfigError("flush_interval and max_rows must be positive")
    # the first interval starts now, when the batcher is made, not when it is first iterated
    return _batches(source_chunks, clock, timedelta(seconds=flush_interval), clock.now(), max_rows, due)


async def _batches(source_chunks: AsyncIterator[SourceChunk], clock: Clock, step: timedelta, start: datetime,
                   max_rows: int, due: Due | None = None) -> AsyncIterator[SourceBatch]:
    """The batching loop of `micro_batches`."""
    deadline = start + step
    fired = None  # the last consumer deadline a batch was closed for (each is honoured once)
    buffer = _Buffer()
    pending: asyncio.Future | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(source_chunks))
            # even when the deadline has passed, take in what the source can hand over at once
            early = due() if due is not None else None
            if early is not None and fired is not None and early <= fired:
                early = None
            wait_s = ((min(deadline, early) if early is not None else deadline) - clock.now()).total_seconds()
            await asyncio.wait({pending}, timeout=min(max(wait_s, 0.0), _MAX_WAIT_S))
            if pending.done():
                try:
                    chunk = pending.result()
                except StopAsyncIteration:
                    pending = None
                    if buffer:
                        yield buffer.batch(clock)
                    return
                pending = None
                buffer.add(chunk)
                if buffer.rows >= max_rows:
                    yield buffer.batch(clock)
                    continue
            now = clock.now()
            if early is not None and early < deadline and now >= early:
                fired = early
                yield buffer.batch(clock)  # off the cadence: the next tick stays where it was
                continue
            if now >= deadline:
                yield buffer.batch(clock)
                # keep the cadence aligned to the first deadline; skip intervals the clock jumped over
                behind = (now - deadline) / step
                deadline += step * (math.floor(behind) + 1)
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
                await pending
        aclose = getattr(source_chunks, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()


def source_batches(source, clock: Clock, due: Due | None = None) -> AsyncIterator[SourceBatch]:
    """Micro-batches of `source`'s chunks, closed by `clock` every `source.flush_interval` seconds, at
    `source.max_rows` rows, or when `due()` says: sources only decode, the job batches."""
    return micro_batches(source.chunks(clock), clock=clock, flush_interval=source.flush_interval,
                         max_rows=source.max_rows, due=due)
