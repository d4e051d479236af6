"""The narrow interface of live sources (chunks of ticks, quarantine and gaps) and the feed bookkeeping they share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

import polars as pl

from ..contract import columns as c
from ..contract import schema
from ..contract.clock import Clock
from ..contract.feed import FeedGap, SourceChunk, id_jump_reason
from ..inputs.decode import split_market
from ..inputs.parse import no_quarantine
from .band import PriceBand
from .band import stats_exprs as band_stats

KEY = "_key"
# A step between consecutive trade ids this large is no outage (Binance's busiest market takes years to
# advance that far): such an id is kept, but it neither reports a gap nor becomes the last id of the sequence.
MAX_ID_STEP = 10**9
# How far an exchange's clock may run ahead of ours before its latest event time is no outage start.
MAX_SKEW = timedelta(minutes=1)
# A jump this long between the event times of one chunk delivered after a reconnect separates trades held back from
# before the outage (an outage older) from the feed's present (a live chunk spans well under a second).
HELD = timedelta(seconds=5)


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
                 band: PriceBand | None = None, remember_keys: bool = True):
        self.exchange = exchange
        self.remember_keys = remember_keys  # False: every trade comes in one accept, none repeats a later chunk's
        self.symbols = tuple(symbols)
        self.check_id_jumps = check_id_jumps
        self.source = source or exchange
        self.band = band if band is not None else PriceBand()
        self.last_id: dict[str, int] = {}  # highest id of each symbol's sequence (id-jump bookkeeping)
        self._last_id_time: dict[str, datetime] = {}
        self.last_time: dict[str, datetime] = {}
        self._seen = pl.DataFrame(schema={c.SYMBOL: pl.String, KEY: pl.Int64, "_ts": schema.TS})
        self._ranges: dict[str, tuple[int, int]] = {}  # lowest and highest remembered key per symbol
        self._recent_cap, self._recent_us = recent_ids, int(recent_seconds * 1_000_000)
        self._prune_at = 4 * recent_ids
        self._open: FeedGap | None = None  # outage waiting for its first event after resumption
        self._lead = timedelta(0)  # how far the feed's event times typically run ahead of `now` (its clock offset)
        self._from_event = False  # the open outage starts at an event time (else at the wall clock)

    def last_event_time(self) -> datetime | None:
        """The latest event time seen on any symbol."""
        return max(self.last_time.values(), default=None)

    def down(self, reason: str, now: datetime) -> FeedGap | None:
        """Mark the feed down; returns the open gap (end None), or None if one is already open. It starts at the
        last event time seen, unless that lies implausibly far past `now` (a trade stamped in the future): further
        than the feed's own clock offset (the median lead of its last chunk, so one outlier does not move it) allows."""
        if self._open is not None:
            return None
        last = self.last_event_time()
        self._from_event = last is not None and last <= now + max(self._lead, timedelta(0)) + MAX_SKEW
        start = last if self._from_event and last is not None else now
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
        # A chunk is a few hundred rows: each Polars call costs more than its work, so the queries are few.
        key = pl.coalesce(pl.col(id_col), pl.col(c.ID).hash().reinterpret(signed=True))
        keyed_q = ticks.lazy().with_columns(pl.when(pl.col(c.ID).is_not_null()).then(key).alias(KEY))
        fresh, summary = pl.collect_all([keyed_q, _summary(keyed_q, rising=True)], engine="in-memory")
        if not summary.get_column("_rising").all():
            # Keys that do not rise within a symbol may repeat: drop all but the first of each (exact, any order).
            fresh = fresh.filter(pl.col(KEY).is_null() | pl.struct(c.SYMBOL, KEY).is_first_distinct())
            summary = _summary(fresh.lazy()).collect(engine="in-memory")
        spans = summary.select(c.SYMBOL, "_lo", "_hi", "_ts").rows()
        # only keys within a symbol's remembered range can be repeats: a feed of rising ids never looks them up
        suspects = [sym for sym, lo, _, _ in spans if sym in self._ranges and lo is not None
                    and lo <= self._ranges[sym][1]]
        if suspects:
            fresh = self._drop_seen(fresh, suspects)
            summary = fresh.lazy().group_by(c.SYMBOL).agg(*band_stats()).collect(engine="in-memory")
        duplicates = ticks.height - fresh.height
        median = fresh.get_column(c.TIMESTAMP).median() if fresh.height else None
        if isinstance(median, datetime):
            self._lead = median - now
        gaps: list[FeedGap] = []
        if self._open is not None and isinstance(median, datetime):
            # Started at an event, it ends at the first event past its start that belongs to the feed's present:
            # after the last jump of more than HELD between the chunk's event times. A trade from before the
            # outage delivered after the reconnect (held back, late) says nothing about when the feed came back.
            # Started at the wall clock (nothing seen yet, e.g. at startup), it ends with the first event.
            start = self._open.start  # the same start as the open gap it closes (readers match them on it)
            stamps = fresh.get_column(c.TIMESTAMP)
            first = schema.oldest(present(stamps.filter(stamps >= start))) if self._from_event else schema.oldest(stamps)
            if first is not None:
                first = max(first, start)
                gaps.append(FeedGap(self.exchange, self._open.symbols, start, first, self._open.reason))
                self._open = None
        if self.check_id_jumps and fresh.height:
            gaps.extend(self._id_jumps(fresh, id_col))
        self._remember(fresh, spans)
        kept, off_book = split_market(fresh.drop(KEY), source=self.source, now=now)
        # the band's per-symbol figures come with the summary, unless off-book fills left the chunk
        stats = summary.select(c.SYMBOL, "_p_med", "_q_med", "_n", "_ts").rows() if not off_book.height else None
        kept, implausible = self.band.check(kept, source=self.source, now=now, stats=stats)
        rejected = [q for q in (off_book, implausible) if q.height]
        quarantine = pl.concat(rejected) if len(rejected) > 1 else (rejected[0] if rejected else no_quarantine())
        return Accepted(kept, gaps, quarantine, duplicates)

    def _drop_seen(self, frame: pl.DataFrame, symbols: list[str]) -> pl.DataFrame:
        """Rows whose (symbol, key) was not accepted lately (looked up for `symbols` only)."""
        seen = self._seen.lazy().filter(pl.col(c.SYMBOL).is_in(symbols)).select(c.SYMBOL, KEY)
        return frame.lazy().join(seen, on=[c.SYMBOL, KEY], how="anti", maintain_order="left").collect(engine="in-memory")

    def _id_jumps(self, frame: pl.DataFrame, id_col: str) -> list[FeedGap]:
        """Gaps where ids above a symbol's highest skip some (id > previous id + 1), ids sorted so that trades
        reordered within the chunk raise none; moves each symbol's highest id (`last_id`).

        One query returns the few rows that matter (each symbol's first and last id, and steps > 1); a step
        past MAX_ID_STEP ends the sequence there (an outlier id is kept but neither reports a gap nor becomes
        the highest), and a highest id far above the whole chunk was an outlier itself: the sequence restarts.
        """
        tid, sym = pl.col(id_col), pl.col(c.SYMBOL)
        first, last = (sym != sym.shift(1)).fill_null(True), (sym != sym.shift(-1)).fill_null(True)
        rows = (
            frame.lazy().select(c.SYMBOL, c.TIMESTAMP, id_col).filter(tid >= 0).sort(c.SYMBOL, id_col)
            .with_columns(first.alias("_first"), last.alias("_last"), tid.shift(1).alias("_pid"),
                          pl.col(c.TIMESTAMP).shift(1).alias("_pts"))
            .filter(pl.col("_first") | pl.col("_last") | (tid - pl.col("_pid") > 1))
            .collect(engine="in-memory").rows()
        )
        tops = {row[0]: row[2] for row in rows if row[4]}  # each symbol's highest id in the chunk
        gaps: list[FeedGap] = []
        hi: int | None = None
        hi_ts: Any = None  # set together with hi: a datetime whenever hi is an id
        broken = False
        for symbol, ts, trade_id, is_first, is_last, pid, pts in rows:
            if is_first:
                hi, hi_ts = self.last_id.get(symbol), self._last_id_time.get(symbol)
                if hi is not None and hi - tops[symbol] > MAX_ID_STEP:
                    hi = hi_ts = None  # the remembered highest id was an outlier
                broken = False
                prev, prev_ts = hi, hi_ts
            else:
                # the sorted predecessor, unless the remembered highest id lies between them
                prev, prev_ts = (pid, pts) if hi is None or pid >= hi else (hi, hi_ts)
            if not broken and trade_id > (hi if hi is not None else trade_id - 1):
                if prev is not None and trade_id - prev > MAX_ID_STEP:
                    broken = True  # an id no outage explains: the sequence ends before it
                    hi, hi_ts = prev, prev_ts
                elif prev is not None and trade_id > prev + 1:
                    gaps.append(FeedGap(self.exchange, (symbol,), prev_ts, max(ts, prev_ts),
                                        id_jump_reason(prev, trade_id), ids=(prev, trade_id)))
                if not broken:
                    hi, hi_ts = trade_id, ts
            if is_last and hi is not None:
                self.last_id[symbol], self._last_id_time[symbol] = hi, hi_ts
        return gaps

    def _remember(self, frame: pl.DataFrame, spans: list[tuple]) -> None:
        """Keep the chunk's keys for dedupe (bounded per symbol by count and event time); latest time and key
        range per symbol. `spans`: (symbol, lowest key, highest key, latest time) of the chunk."""
        for symbol, lo, hi, ts in spans:
            if ts is not None:
                self.last_time[symbol] = max(ts, self.last_time.get(symbol, ts))
            if lo is not None:
                old = self._ranges.get(symbol, (lo, hi))
                self._ranges[symbol] = (min(lo, old[0]), max(hi, old[1]))
        if not self.remember_keys:
            return
        keys = frame.select(c.SYMBOL, KEY, pl.col(c.TIMESTAMP).alias("_ts"))
        if keys.get_column(KEY).null_count():
            keys = keys.filter(pl.col(KEY).is_not_null())
        self._seen = pl.concat([self._seen, keys], rechunk=False)
        if self._seen.height > self._prune_at:
            self._prune()

    def _prune(self) -> None:
        """Forget keys older than `recent_seconds` before their symbol's newest, and all but the newest
        `recent_ids` per symbol; the next prune comes when the memory has doubled."""
        newest = pl.col("_ts").max().over(c.SYMBOL)
        recent = (pl.col("_ts") >= newest - pl.duration(microseconds=self._recent_us)) | pl.col("_ts").is_null()
        last_n = pl.int_range(pl.len()).over(c.SYMBOL) >= pl.len().over(c.SYMBOL).cast(pl.Int64) - self._recent_cap
        self._seen = self._seen.filter(recent & last_n)
        spans = self._seen.group_by(c.SYMBOL).agg(pl.col(KEY).min(), pl.col(KEY).max().alias("_hi")).rows()
        self._ranges = {symbol: (lo, hi) for symbol, lo, hi in spans}
        self._prune_at = max(4 * self._recent_cap, 2 * self._seen.height)


def _summary(keyed: pl.LazyFrame, *, rising: bool = False) -> pl.LazyFrame:
    """Per symbol: lowest and highest key, the band's figures and (`rising`) whether its keys rise strictly in
    arrival order (then the chunk holds no repeat of its own and needs no distinct pass)."""
    k = pl.col(KEY).drop_nulls()
    extra = [(k > k.shift(1)).all().alias("_rising")] if rising else []
    return keyed.group_by(c.SYMBOL).agg(pl.col(KEY).min().alias("_lo"), pl.col(KEY).max().alias("_hi"),
                                        *band_stats(), *extra)


def present(stamps: pl.Series) -> pl.Series:
    """The event times after the last jump of more than HELD between consecutive (sorted) ones: the feed's present."""
    ordered = stamps.sort()
    if ordered.len() < 2:
        return ordered
    jumps = (ordered.diff() > HELD).fill_null(False).arg_true()
    return ordered if jumps.len() == 0 else ordered.slice(int(jumps[-1]))
