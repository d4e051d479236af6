"""Micro-batching: groups the small chunks a source decodes into batches closed by time or by size."""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import AsyncIterator

import polars as pl

from ..contract.clock import Clock
from ..contract.errors import ConfigError
from ..contract.feed import FeedGap, SourceChunk
from ..contract.schema import empty_quarantine, empty_ticks

# Upper bound of one real-time wait, so a clock moved by hand (replays, tests) is noticed promptly.
_MAX_WAIT_S = 0.05


@dataclass
class SourceBatch:
    """What the stream job processes at once: ticks, rejected rows and known gaps, closed at `received_at`."""

    ticks: pl.DataFrame  # conforms to schema.TICK_SCHEMA (local_timestamp = receive time)
    quarantine: pl.DataFrame  # schema.QUARANTINE_SCHEMA, may be empty
    gaps: list[FeedGap]
    received_at: datetime  # clock time when the batch was closed


class _Buffer:
    """Chunks gathered since the last batch."""

    def __init__(self) -> None:
        self.ticks: list[pl.DataFrame] = []
        self.quarantine: list[pl.DataFrame] = []
        self.gaps: list[FeedGap] = []
        self.rows = 0

    def add(self, chunk: SourceChunk) -> None:
        """Append one chunk (frames are kept as separate chunks, not copied)."""
        if chunk.ticks is not None and chunk.ticks.height:
            self.ticks.append(chunk.ticks)
            self.rows += chunk.ticks.height
        if chunk.quarantine is not None and chunk.quarantine.height:
            self.quarantine.append(chunk.quarantine)
        self.gaps.extend(chunk.gaps)

    def __bool__(self) -> bool:
        return bool(self.ticks or self.quarantine or self.gaps)

    def batch(self, clock: Clock) -> SourceBatch:
        """The buffered data as one batch closed now; the buffer is emptied."""
        ticks = pl.concat(self.ticks, rechunk=False) if self.ticks else empty_ticks()
        quarantine = pl.concat(self.quarantine, rechunk=False) if self.quarantine else empty_quarantine()
        out = SourceBatch(ticks=ticks, quarantine=quarantine, gaps=self.gaps, received_at=clock.now())
        self.__init__()
        return out


def micro_batches(
    source_chunks: AsyncIterator[SourceChunk],
    *,
    clock: Clock,
    flush_interval: float = 0.25,
    max_rows: int = 50_000,
) -> AsyncIterator[SourceBatch]:
    """Batches of the chunks of `source_chunks`: one every `flush_interval` clock seconds, or sooner at `max_rows`.

    A quiet interval still yields an empty batch so the consumer can advance its watermark; when the clock
    jumps over several intervals one batch covers them all. A batch may exceed `max_rows` by at most one chunk.
    The generator ends after the source ends, with a last batch of whatever was still buffered.
    """
    if flush_interval <= 0 or max_rows <= 0:
        raise ConfigError("flush_interval and max_rows must be positive")
    # the first interval starts now, when the batcher is made, not when it is first iterated
    return _batches(source_chunks, clock, timedelta(seconds=flush_interval), clock.now(), max_rows)


async def _batches(source_chunks: AsyncIterator[SourceChunk], clock: Clock, step: timedelta, start: datetime,
                   max_rows: int) -> AsyncIterator[SourceBatch]:
    """The batching loop of `micro_batches`."""
    deadline = start + step
    buffer = _Buffer()
    pending: asyncio.Future | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(source_chunks))
            # even when the deadline has passed, take in what the source can hand over at once
            wait = (deadline - clock.now()).total_seconds()
            await asyncio.wait({pending}, timeout=min(max(wait, 0.0), _MAX_WAIT_S))
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


def source_batches(source, clock: Clock) -> AsyncIterator[SourceBatch]:
    """Micro-batches of `source`'s chunks, closed by `clock` every `source.flush_interval` seconds or at
    `source.max_rows` rows: sources only decode, the job batches."""
    return micro_batches(source.chunks(clock), clock=clock, flush_interval=source.flush_interval,
                         max_rows=source.max_rows)
