"""Follow a DuckDB file that a stream writes: find candles written since the last look, hand them to subscribers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from ..contract import columns as c
from ..contract import defaults as d
from ..contract import schema
from ..contract.clock import Clock, WallClock
from ..contract.errors import MdstreamError
from .chart import LEGEND_FEATURES, Series, list_series, load_since
from .readonly import frame, reading

# Rows are found by timestamp_out. A writer stamps rows before it commits them, so a look also re-reads the last
# MARGIN of stamps and skips the (series, stamp, count) groups it has already handed out.
MARGIN = timedelta(seconds=60)
QUEUE_SIZE = 64


@dataclass
class Look:
    """What one look at the file found: payloads of changed subscribed series, whether a new series appeared."""

    updates: dict[Series, dict] = field(default_factory=dict)
    new_series: bool = False


class LiveFeed:
    """One poller per server: every `poll_s` seconds, while anyone listens, one short read-only look at the file."""

    def __init__(self, db_path: str | Path, *, poll_s: float = d.SERVE_POLL_S, features: tuple[str, ...] = LEGEND_FEATURES,
                 clock: Clock | None = None):
        """Follow `db_path`; nothing is read until the first subscriber."""
        self.db_path, self.poll_s, self.features = Path(db_path), poll_s, features
        self.clock = clock or WallClock()
        self._queues: dict[Series, set[asyncio.Queue]] = {}
        self._seen: dict[tuple, datetime] = {}
        self._cursor: datetime | None = None
        self._known: set[tuple[str, str, str]] | None = None
        self.looks = 0

    def subscribe(self, series: Series) -> asyncio.Queue:
        """A queue that receives ("update", payload), ("series", {}), ("problem", {...}) or ("resync", {}) events."""
        queue: asyncio.Queue = asyncio.Queue(maxsize=QUEUE_SIZE)
        self._queues.setdefault(series, set()).add(queue)
        return queue

    def unsubscribe(self, series: Series, queue: asyncio.Queue) -> None:
        """Stop delivering to `queue`."""
        queues = self._queues.get(series, set())
        queues.discard(queue)
        if not queues:
            self._queues.pop(series, None)

    def close(self) -> None:
        """Tell every subscriber to end (a None event)."""
        for queues in self._queues.values():
            for queue in queues:
                self._put(queue, None)

    @staticmethod
    def _put(queue: asyncio.Queue, event) -> None:
        """Deliver `event`; a subscriber too slow to keep up is told to reload instead of losing updates silently."""
        try:
            queue.put_nowait(event)
        except asyncio.QueueFull:
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(("resync", {}))

    def _broadcast(self, event) -> None:
        """Deliver `event` to every subscriber."""
        for queues in self._queues.values():
            for queue in queues:
                self._put(queue, event)

    async def run(self) -> None:
        """Look every poll_s seconds while there are subscribers, until cancelled."""
        while True:
            await asyncio.sleep(self.poll_s)
            if not self._queues:
                continue
            try:
                look = await asyncio.to_thread(self.look, tuple(self._queues))
            except MdstreamError as exc:  # busy or unreadable: say so, try again next time
                self._broadcast(("problem", {"error": str(exc)}))
                continue
            if look.new_series:
                self._broadcast(("series", {}))
            for series, data in look.updates.items():
                for queue in self._queues.get(series, ()):
                    self._put(queue, ("update", data))

    def look(self, subscribed: tuple[Series, ...]) -> Look:
        """One read-only look: groups of rows stamped since the cursor (less MARGIN) that were not handed out yet,
        and for each subscribed series among them its windows from the earliest changed one on."""
        self.looks += 1
        since = (self._cursor or self.clock.now()) - MARGIN
        sql = f"""SELECT {c.EXCHANGE}, {c.SYMBOL}, {c.TIMEFRAME}, {c.TIMESTAMP_OUT}, count(*) AS n,
                         min({c.TIMESTAMP_IN}) AS first_in
                  FROM candles WHERE {c.TIMESTAMP_OUT} > ? GROUP BY ALL"""
        with reading(self.db_path) as con:
            if self._known is None:
                self._known = {(s.exchange, s.symbol, s.timeframe) for s in list_series(con)}
            groups = frame(con, sql, [since])
            fresh = self._fresh(groups)
            look = Look()
            first_changed: dict[Series, datetime] = {}
            for exchange, symbol, timeframe, first_in in fresh:
                if (exchange, symbol, timeframe) not in self._known:
                    self._known.add((exchange, symbol, timeframe))
                    look.new_series = True
                key = Series(exchange, symbol, timeframe)
                first_changed[key] = min(first_in, first_changed.get(key, first_in))
            for series in subscribed:
                if series in first_changed:
                    look.updates[series] = load_since(con, series, first_changed[series], self.features)
        return look

    def _fresh(self, groups: pl.DataFrame) -> list[tuple]:
        """(exchange, symbol, timeframe, first_in) of the groups not seen before; remembers them and moves the cursor."""
        rows = []
        for exchange, symbol, timeframe, stamp, n, first_in in groups.iter_rows():
            signature = (exchange, symbol, timeframe, stamp, n, first_in)
            if signature in self._seen:
                continue
            self._seen[signature] = stamp
            rows.append((exchange, symbol, timeframe, first_in))
        if groups.height:
            newest = schema.newest(groups.get_column(c.TIMESTAMP_OUT))
            if newest is not None:
                self._cursor = newest if self._cursor is None else max(self._cursor, newest)
        if self._cursor is not None:
            horizon = self._cursor - MARGIN
            self._seen = {sig: stamp for sig, stamp in self._seen.items() if stamp > horizon}
        return rows
