"""Replay of recorded trades (Tardis trade CSVs, recorded Binance WebSocket files) as a live source."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl

from ..contract import columns as c
from ..contract import defaults as d
from ..contract import schema
from ..contract.clock import Clock, ManualClock
from ..contract.errors import ConfigError
from ..contract.feed import SourceChunk
from ..contract.schema import empty_quarantine
from ..inputs.decode import TRADE_ID, strip_trade_id
from ..inputs.recording import read_ws_recording
from ..inputs.tardis import read_trades
from ..kernel.gaps import CONSECUTIVE_ID_PREFIXES
from .base import FeedTracker
from .status import FeedStatus, tally

FAST_STEP_S = 86400.0  # event seconds per slice of an as-fast-as-possible replay: a UTC day
FAST_ROWS = 1_000_000  # trades per slice at most (bounded steps: a signal is served within one)


def load(paths: list[Path], *, now: datetime, exchange: str | None = None,
         ignored: dict[str, int] | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(ticks of every file merged in event-time order with `_trade_id`, quarantine of all files); non-trade
    messages of recordings are counted by type into `ignored`."""
    ticks, quarantine = [], []
    for path in paths:
        name = path.name.lower()
        if name.endswith(".csv") or name.endswith(".csv.gz"):
            read = read_trades(path, now=now)
            frame = read.ticks.with_columns(pl.col(c.ID).cast(pl.Int64, strict=False).alias(TRADE_ID))
            ticks.append(frame)
            quarantine.append(read.quarantine)
        else:
            recording = read_ws_recording(path, exchange=exchange, now=now)
            ticks.append(recording.ticks)
            quarantine.append(recording.quarantine)
            for kind, count in recording.ignored.items():
                if ignored is not None:
                    ignored[kind] = ignored.get(kind, 0) + count
    if not ticks:
        raise ConfigError("replay needs at least one input file")
    merged = pl.concat(ticks, how="diagonal_relaxed") if len(ticks) > 1 else ticks[0]
    stamps = merged.get_column(c.TIMESTAMP)
    if stamps.null_count() or not stamps.is_sorted():
        # A stable sort keeps ties in (file, row) order, the order they were concatenated in.
        merged = merged.sort(c.TIMESTAMP, maintain_order=True)
    else:
        # In order already: flagged sorted as the sort would leave it, so what follows sees the same frame.
        merged = merged.with_columns(pl.col(c.TIMESTAMP).set_sorted())
    return merged, pl.concat(quarantine) if quarantine else empty_quarantine()


class ReplaySource:
    """Recorded trades replayed at `speed` (0: as fast as possible, N: N x real time); drives its own clock.

    `clock` is a ManualClock that always equals the latest event time replayed, so candles close by event time
    (the engine runs a replay on event time alone): deterministic at speed 0, paced like the market at speed N.
    At speed 0 the input goes out in large slices (FAST_STEP_S of event time, at most FAST_ROWS trades), so one engine
    step closes many windows at once.
    """

    def __init__(self, paths: list[str | Path], *, speed: float = 0.0, exchange: str | None = None,
                 step: float | None = None, flush_interval: float = d.FLUSH_INTERVAL_S, max_rows: int = d.MAX_ROWS,
                 now: datetime | None = None):
        if speed == 0 and step is None:
            # nobody waits on an as-fast-as-possible replay: big slices, so the consumer's per-batch cost is paid
            # rarely; results do not change (the engine's invariant)
            flush_interval = step = max(flush_interval, FAST_STEP_S)
            max_rows = max(max_rows, FAST_ROWS)
        step = flush_interval if step is None else step
        if speed < 0 or step <= 0:
            raise ConfigError("speed must be >= 0 and step > 0")
        self.speed, self.step, self.flush_interval, self.max_rows = speed, step, flush_interval, max_rows
        stamp = now or datetime.now(timezone.utc)
        self.ignored: dict[str, int] = {}
        self.duplicates = 0
        self.ticks, self.quarantine = load([Path(p) for p in paths], now=stamp, exchange=exchange, ignored=self.ignored)
        exchanges = self.ticks.get_column(c.EXCHANGE).unique().to_list()
        self.exchange = exchanges[0] if len(exchanges) == 1 else (exchange or "replay")
        self.clock = ManualClock(schema.oldest(self.ticks.get_column(c.TIMESTAMP)) or stamp)
        # One accept takes the whole input (see _checked): no keys need remembering for later chunks.
        self.trackers = {ex: FeedTracker(ex, check_id_jumps=ex.startswith(CONSECUTIVE_ID_PREFIXES), source="replay",
                                         remember_keys=False)
                         for ex in exchanges}
        self.status = FeedStatus(self.exchange, up=True)

    def _slices(self) -> list[tuple[int, int, datetime]]:
        """(offset, length, last event time) of consecutive event-time slices `step` seconds long, each cut into
        pieces of at most `max_rows` trades."""
        if self.ticks.height == 0:
            return []
        step_us = int(self.step * 1_000_000)
        keys = self.ticks.select((pl.col(c.TIMESTAMP).dt.epoch("us") // step_us).alias("k"))
        runs = keys.with_row_index("i").group_by("k", maintain_order=True).agg(pl.col("i").min(), pl.len())
        out = []
        for first, length in runs.select("i", "len").iter_rows():
            for offset in range(first, first + length, self.max_rows):
                out.append((offset, min(self.max_rows, first + length - offset)))
        ends = self.ticks.get_column(c.TIMESTAMP).gather([o + n - 1 for o, n in out])
        return [(o, n, end) for (o, n), end in zip(out, ends.to_list())]

    def _checked(self) -> tuple[pl.DataFrame, list]:
        """(ticks after per-exchange dedupe, gaps from trade-id jumps), over the whole input in one pass."""
        kept, gaps, rejected = [], [], [schema.conform(self.quarantine, schema.QUARANTINE_SCHEMA)]
        for exchange, tracker in self.trackers.items():
            accepted = tracker.accept(self.ticks.filter(pl.col(c.EXCHANGE) == exchange), TRADE_ID, now=self.clock.now())
            kept.append(accepted.ticks)
            gaps.extend(accepted.gaps)
            rejected.append(accepted.quarantine)
            self.duplicates += accepted.duplicates
        ticks = pl.concat(kept).sort(c.TIMESTAMP, maintain_order=True) if len(kept) > 1 else (kept[0] if kept else self.ticks)
        self.quarantine = pl.concat(rejected)
        return strip_trade_id(ticks), sorted(gaps, key=lambda g: g.end)

    def chunks(self, clock: Clock | None = None) -> AsyncIterator[SourceChunk]:
        """Chunks of one slice each, moving the replay's own clock to each slice's last event time (`clock` is
        ignored: event time drives a replay); ends with the input. Each chunk is recorded in `status`."""
        return tally(self._chunks(), self.status)

    async def _chunks(self) -> AsyncIterator[SourceChunk]:
        """The slices of `chunks`; the first chunk carries the rejected rows, repeats and non-trade messages."""
        self.ticks, gaps = self._checked()
        others = self.quarantine.height + self.duplicates + sum(self.ignored.values())
        if others:
            yield SourceChunk(quarantine=self.quarantine, received=others, duplicates=self.duplicates,
                              ignored=dict(self.ignored))
        origin_event, origin_wall = self.clock.now(), time.monotonic()
        for offset, length, last in self._slices():
            if self.speed > 0:
                await self._pace(origin_event, origin_wall, last)
            self.clock.set(last)
            # a gap is reported with the slice holding its end, i.e. when the replay reaches it
            due = [g for g in gaps if g.end <= last]
            gaps = gaps[len(due):]
            yield SourceChunk(ticks=self.ticks.slice(offset, length), gaps=due, received=length)
            if self.speed == 0:
                await asyncio.sleep(0)  # as fast as possible, yet fair to the consumer

    async def _pace(self, origin_event: datetime, origin_wall: float, until: datetime):
        """Sleep until `until` is due at `speed`, moving the clock along so quiet stretches still close batches."""
        while True:
            due = origin_wall + (until - origin_event).total_seconds() / self.speed
            wait = due - time.monotonic()
            if wait <= 0:
                return
            await asyncio.sleep(min(wait, self.step / self.speed))
            elapsed = (time.monotonic() - origin_wall) * self.speed
            self.clock.set(min(until, origin_event + timedelta(seconds=elapsed)))
