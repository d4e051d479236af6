"""The narrow interface of live sources (chunks of ticks, quarantine and gaps) and the feed bookkeeping they share."""

from __future__ import annotations

from datetime import datetime
from typing import AsyncIterator, NamedTuple, Protocol

import polars as pl

from ..contract import columns as c
from ..contract import schema
from ..contract.clock import Clock
from ..contract.feed import FeedGap, SourceChunk, id_jump_reason
from ..inputs.decode import split_market
from ..inputs.parse import no_quarantine
from .band import PriceBand

KEY = "_key"
# A step between consecutive trade ids this large is no outage (Binance's busiest market takes years to
# advance that far): such an id is kept, but it neither reports a gap nor becomes the last id of the sequence.
MAX_ID_STEP = 10**9


class Source(Protocol):
    """A producer of chunks of ticks; `chunks` is an async generator that ends when the input ends. The job
    batches the chunks (jobs.batcher); a source never does."""

    exchange: str

    def chunks(self, clock: Clock) -> AsyncIterator[SourceChunk]:
        """Chunks of decoded ticks, rejected rows and gaps, timed by `clock`."""


class Accepted(NamedTuple):
    """What the tracker made of a chunk of decoded trades: new ticks, the gaps they reveal, the rows it rejected
    (off-book fills, implausible prices) and the number of exact repeats it dropped."""

    ticks: pl.DataFrame
    gaps: list[FeedGap]
    quarantine: pl.DataFrame
    duplicates: int


class FeedTracker:
    """Per-symbol bookkeeping of a feed: exact repeats dropped, id jumps, outages and startup, plausible prices.

    Pure state, no I/O. Dedupe is exact on (symbol, id) against the trades accepted lately (the newest
    `recent_ids` per symbol, and only those within `recent_seconds` of its newest event time), with no
    assumption about the order of ids. Id jumps are gap hints only with `check_id_jumps` (venues whose ids are
    consecutive): ids above the highest seen, sorted, so trades reordered within a chunk raise none.
    """

    def __init__(self, exchange: str, symbols: tuple[str, ...] = (), *, check_id_jumps: bool = False,
                 recent_ids: int = 10_000, recent_seconds: float = 600.0, source: str | None = None,
                 band: PriceBand | None = None):
        self.exchange = exchange
        self.symbols = tuple(symbols)
        self.check_id_jumps = check_id_jumps
        self.source = source or exchange
        self.band = band if band is not None else PriceBand()
        self.last_id: dict[str, int] = {}  # highest id of each symbol's sequence (id-jump bookkeeping)
        self._last_id_time: dict[str, datetime] = {}
        self.last_time: dict[str, datetime] = {}
        self._seen = pl.DataFrame(schema={c.SYMBOL: pl.String, KEY: pl.Int64, "_ts": schema.TS})
        self._ranges = pl.DataFrame(schema={c.SYMBOL: pl.String, "_lo": pl.Int64, "_hi": pl.Int64})
        self._recent_cap, self._recent_us = recent_ids, int(recent_seconds * 1_000_000)
        self._prune_at = 4 * recent_ids
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

    def accept(self, ticks: pl.DataFrame, id_col: str, *, now: datetime) -> Accepted:
        """New ticks of a decoded chunk (carrying the integer id column `id_col`, null for text ids), the gaps
        they reveal, the rows rejected as off-book or implausible, and the count of repeats dropped."""
        if ticks.height == 0:
            return Accepted(ticks, [], no_quarantine(), 0)
        key = pl.coalesce(pl.col(id_col), pl.col(c.ID).hash().reinterpret(signed=True))
        frame = ticks.with_row_index("_row").with_columns(pl.when(pl.col(c.ID).is_not_null()).then(key).alias(KEY))
        fresh = frame.filter(pl.col(KEY).is_null() | pl.col(KEY).is_first_distinct().over(c.SYMBOL))
        fresh = self._drop_seen(fresh)
        duplicates = ticks.height - fresh.height
        gaps: list[FeedGap] = []
        if self._open is not None and fresh.height:
            first = fresh.get_column(c.TIMESTAMP).min()
            # same start as the open gap it closes (readers match them on it); a clock ahead of the exchange's
            # could put that start after the first event, so the end never precedes it
            start = self._open.start
            gaps.append(FeedGap(self.exchange, self._open.symbols, start, max(first, start), self._open.reason))
            self._open = None
        if self.check_id_jumps:
            gaps.extend(self._id_jumps(fresh, id_col))
        self._remember(fresh)
        kept, off_book = split_market(fresh.drop("_row", KEY), source=self.source, now=now)
        kept, implausible = self.band.check(kept, source=self.source, now=now)
        rejected = [q for q in (off_book, implausible) if q.height]
        quarantine = pl.concat(rejected) if len(rejected) > 1 else (rejected[0] if rejected else no_quarantine())
        return Accepted(kept, gaps, quarantine, duplicates)

    def _drop_seen(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Rows whose (symbol, key) was not accepted lately; only keys within a symbol's remembered range are
        looked up, so a feed of rising ids never touches the memory."""
        if self._seen.height == 0:
            return frame
        inside = frame.join(self._ranges, on=c.SYMBOL, how="inner").filter(pl.col(KEY).is_between("_lo", "_hi"))
        if inside.height == 0:
            return frame
        seen = self._seen.join(inside.select(c.SYMBOL, KEY), on=[c.SYMBOL, KEY], how="semi")
        if seen.height == 0:
            return frame
        return frame.join(seen.select(c.SYMBOL, KEY), on=[c.SYMBOL, KEY], how="anti", maintain_order="left")

    def _id_jumps(self, frame: pl.DataFrame, id_col: str) -> list[FeedGap]:
        """Gaps where ids above a symbol's highest skip some (id > previous id + 1), ids sorted so that trades
        reordered within the chunk raise none; moves each symbol's highest id (`last_id`)."""
        known = pl.DataFrame(
            {c.SYMBOL: list(self.last_id), "_hi": list(self.last_id.values()),
             "_hi_ts": [self._last_id_time[s] for s in self.last_id]},
            schema={c.SYMBOL: pl.String, "_hi": pl.Int64, "_hi_ts": schema.TS},
        )
        tid = pl.col(id_col)
        # a highest id far above every id of the chunk was an outlier itself: the sequence restarts here
        outlier = pl.col("_hi") - tid.max().over(c.SYMBOL) > MAX_ID_STEP
        hi, hi_ts = (pl.when(~outlier).then(pl.col(k)).alias(k) for k in ("_hi", "_hi_ts"))
        base = pl.coalesce(pl.col("_hi"), tid.min().over(c.SYMBOL) - 1)
        ahead = (
            frame.lazy().filter(tid >= 0).join(known.lazy(), on=c.SYMBOL, how="left").with_columns(hi, hi_ts)
            .filter((tid > base) & (tid - base <= MAX_ID_STEP))
            .unique([c.SYMBOL, id_col], keep="first").sort(c.SYMBOL, id_col)
            .with_columns(
                pl.coalesce(tid.shift(1).over(c.SYMBOL), pl.col("_hi")).alias("_pid"),
                pl.coalesce(pl.col(c.TIMESTAMP).shift(1).over(c.SYMBOL), pl.col("_hi_ts")).alias("_pts"),
            ).collect(engine="in-memory")
        )
        if ahead.height == 0:
            return []
        for symbol, top, ts in ahead.group_by(c.SYMBOL).agg(tid.last(), pl.col(c.TIMESTAMP).last()).iter_rows():
            self.last_id[symbol], self._last_id_time[symbol] = top, ts
        jumps = ahead.filter(pl.col("_pid").is_not_null() & (tid > pl.col("_pid") + 1))
        return [
            FeedGap(self.exchange, (row[c.SYMBOL],), row["_pts"], max(row[c.TIMESTAMP], row["_pts"]),
                    id_jump_reason(row["_pid"], row[id_col]))
            for row in jumps.select(c.SYMBOL, c.TIMESTAMP, id_col, "_pid", "_pts").iter_rows(named=True)
        ]

    def _remember(self, frame: pl.DataFrame) -> None:
        """Keep the chunk's keys for dedupe (bounded per symbol by count and event time); latest time per symbol."""
        for symbol, ts in frame.group_by(c.SYMBOL).agg(pl.col(c.TIMESTAMP).max()).iter_rows():
            if ts is not None:
                self.last_time[symbol] = max(ts, self.last_time.get(symbol, ts))
        keys = frame.filter(pl.col(KEY).is_not_null()).select(c.SYMBOL, KEY, pl.col(c.TIMESTAMP).alias("_ts"))
        if keys.height == 0:
            return
        self._seen = pl.concat([self._seen, keys], rechunk=False)
        if self._seen.height > self._prune_at:
            self._prune()
        else:
            span = keys.group_by(c.SYMBOL).agg(pl.col(KEY).min().alias("_lo"), pl.col(KEY).max().alias("_hi"))
            self._ranges = (
                pl.concat([self._ranges, span]).group_by(c.SYMBOL).agg(pl.col("_lo").min(), pl.col("_hi").max())
            )

    def _prune(self) -> None:
        """Forget keys older than `recent_seconds` before their symbol's newest, and all but the newest
        `recent_ids` per symbol; the next prune comes when the memory has doubled."""
        newest = pl.col("_ts").max().over(c.SYMBOL)
        recent = (pl.col("_ts") >= newest - pl.duration(microseconds=self._recent_us)) | pl.col("_ts").is_null()
        last_n = pl.int_range(pl.len()).over(c.SYMBOL) >= pl.len().over(c.SYMBOL).cast(pl.Int64) - self._recent_cap
        self._seen = self._seen.filter(recent & last_n)
        self._ranges = self._seen.group_by(c.SYMBOL).agg(pl.col(KEY).min().alias("_lo"), pl.col(KEY).max().alias("_hi"))
        self._prune_at = max(4 * self._recent_cap, 2 * self._seen.height)

    def memory_rows(self) -> int:
        """Rows of remembered keys (bounded: see `_prune`)."""
        return self._seen.height
