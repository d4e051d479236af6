"""The narrow interface of live sources (chunks of ticks, quarantine and gaps) and the feed bookkeeping they share."""

from __future__ import annotations

from datetime import datetime
from typing import AsyncIterator, Protocol

import polars as pl

from ..contract import columns as c
from ..contract import schema
from ..contract.clock import Clock
from ..contract.feed import FeedGap, SourceChunk, id_jump_reason


class Source(Protocol):
    """A producer of chunks of ticks; `chunks` is an async generator that ends when the input ends. The job
    batches the chunks (jobs.batcher); a source never does."""

    exchange: str

    def chunks(self, clock: Clock) -> AsyncIterator[SourceChunk]:
        """Chunks of decoded ticks, rejected rows and gaps, timed by `clock`."""


class FeedTracker:
    """Per-symbol bookkeeping of a feed: drops trades already seen, reports id jumps, outages and startup.

    Pure state, no I/O: `accept` takes decoded ticks carrying an integer `_trade_id` (null when the exchange's
    ids are not integers) and returns the new ticks plus the gaps they reveal.
    """

    def __init__(self, exchange: str, symbols: tuple[str, ...] = (), *, check_id_jumps: bool = False,
                 recent_ids: int = 50_000):
        self.exchange = exchange
        self.symbols = tuple(symbols)
        self.check_id_jumps = check_id_jumps
        self.last_id: dict[str, int] = {}
        self.last_time: dict[str, datetime] = {}
        # Non-integer ids seen lately (symbol, id), the newest `recent_ids` per symbol: a frame, so the
        # per-chunk check is one anti-join instead of rebuilding Python tuples.
        self._recent = pl.DataFrame(schema={c.SYMBOL: pl.String, "_seen": pl.String})
        self._recent_cap = recent_ids
        self._open: FeedGap | None = None  # outage waiting for its first event after resumption

    def last_event_time(self) -> datetime | None:
        """The latest event time seen on any symbol."""
        return max(self.last_time.values(), default=None)

    def down(self, reason: str, now: datetime) -> FeedGap | None:
        """Mark the feed down; returns the open gap (end None), or None if one is already open."""
        if self._open is not None:
            return None
        start = self.last_event_time() or now
        self._open = FeedGap(self.exchange, self._all_symbols(), start, None, reason)
        return self._open

    def _all_symbols(self) -> tuple[str, ...]:
        """Subscribed symbols, or every symbol seen when none were named."""
        return self.symbols or tuple(sorted(self.last_time))

    def accept(self, ticks: pl.DataFrame, id_col: str) -> tuple[pl.DataFrame, list[FeedGap]]:
        """(ticks not seen before, gaps): drops ids <= the last seen per symbol; an id jump or resumption is a gap."""
        if ticks.height == 0:
            return ticks, []
        sym, tid = pl.col(c.SYMBOL), pl.col(id_col)
        known = pl.DataFrame(
            {c.SYMBOL: list(self.last_id), "_known": list(self.last_id.values()),
             "_lts": [self.last_time.get(s) for s in self.last_id]},
            schema={c.SYMBOL: pl.String, "_known": pl.Int64, "_lts": schema.TS},
        )
        # highest id before each row: the last id seen earlier, or an earlier row of this chunk
        before = pl.max_horizontal(pl.col("_known"), tid.cum_max().shift(1).over(sym))
        # previous integer id and its time per symbol (for id jumps): earlier in the chunk, else the last seen
        id_time = pl.when(tid.is_not_null()).then(pl.col(c.TIMESTAMP))
        # One query per chunk: a chunk is a few hundred rows, and each separate Polars call costs more than it does.
        frame = (
            ticks.lazy().with_row_index("_row").join(known.lazy(), on=c.SYMBOL, how="left").sort("_row")
            .with_columns(before.alias("_before"))
            .filter(tid.is_null() | pl.col("_before").is_null() | (tid > pl.col("_before")))
            .with_columns(
                pl.coalesce(tid.forward_fill().shift(1).over(sym), pl.col("_known")).alias("_pid"),
                pl.coalesce(id_time.forward_fill().shift(1).over(sym), pl.col("_lts")).alias("_pts"),
            )
            .collect(engine="in-memory")
        )
        frame = self._drop_seen_text_ids(frame, id_col)
        gaps: list[FeedGap] = []
        if self._open is not None and frame.height:
            first = frame.get_column(c.TIMESTAMP).min()
            # same start as the open gap it closes (readers match them on it); a clock ahead of the exchange's
            # could put that start after the first event, so the end never precedes it
            start = self._open.start
            gaps.append(FeedGap(self.exchange, self._open.symbols, start, max(first, start), self._open.reason))
            self._open = None
        if self.check_id_jumps:
            gaps.extend(self._id_jumps(frame, id_col))
        self._remember(frame, id_col)
        return frame.drop("_row", "_known", "_lts", "_before", "_pid", "_pts"), gaps

    def _drop_seen_text_ids(self, frame: pl.DataFrame, id_col: str) -> pl.DataFrame:
        """Drop rows whose non-integer id was seen recently for the same symbol."""
        if not _has_text_ids(frame, id_col):
            return frame
        frame = frame.join(self._recent, left_on=[c.SYMBOL, c.ID], right_on=[c.SYMBOL, "_seen"], how="anti").sort("_row")
        repeat = pl.col(id_col).is_null() & (pl.int_range(pl.len()).over([c.SYMBOL, c.ID]) > 0)
        return frame.filter(~repeat)

    def _id_jumps(self, frame: pl.DataFrame, id_col: str) -> list[FeedGap]:
        """Gaps where a symbol's consecutive trade ids skip (id > previous id + 1); `frame` carries the previous
        id and its time per row (`_pid`, `_pts`)."""
        jumps = frame.filter(pl.col(id_col).is_not_null() & (pl.col(id_col) > pl.col("_pid") + 1))
        return [
            FeedGap(self.exchange, (row[c.SYMBOL],), row["_pts"], row[c.TIMESTAMP], id_jump_reason(row["_pid"], row[id_col]))
            for row in jumps.select(c.SYMBOL, c.TIMESTAMP, id_col, "_pid", "_pts").iter_rows(named=True)
        ]

    def _remember(self, frame: pl.DataFrame, id_col: str) -> None:
        """Update the last id, last event time and recent text ids per symbol."""
        summary = frame.group_by(c.SYMBOL).agg(pl.col(id_col).max().alias("_max"), pl.col(c.TIMESTAMP).max().alias("_ts"))
        for symbol, max_id, ts in summary.iter_rows():
            if max_id is not None:
                self.last_id[symbol] = max(max_id, self.last_id.get(symbol, max_id))
            if ts is not None:
                self.last_time[symbol] = max(ts, self.last_time.get(symbol, ts))
        text = frame.filter(pl.col(id_col).is_null() & pl.col(c.ID).is_not_null()) if _has_text_ids(frame, id_col) else None
        if text is not None and text.height:
            both = pl.concat([self._recent, text.select(c.SYMBOL, pl.col(c.ID).alias("_seen"))])
            newest = pl.int_range(pl.len()).over(c.SYMBOL) >= pl.len().over(c.SYMBOL).cast(pl.Int64) - self._recent_cap
            self._recent = both.filter(newest)


def _has_text_ids(frame: pl.DataFrame, id_col: str) -> bool:
    """True when some row has an id that is not an integer (null `id_col`, non-null id): O(1) null counts."""
    return frame.get_column(id_col).null_count() > frame.get_column(c.ID).null_count()
