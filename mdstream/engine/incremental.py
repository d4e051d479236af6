"""Incremental candles and features for the stream job: bounded state, batch in, closed candles out.

The engine reuses the backfill's pure functions (sparse_from_ticks, rollup, densify, finalize, add_features)
on a bounded state, so the same ticks give the same candles however they were split into batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Sequence

import polars as pl

from ..contract import columns as c
from ..contract import timeframes as tfm
from ..contract.feed import FeedGap
from ..contract.schema import CANDLE_SCHEMA, QUARANTINE_SCHEMA, TICK_SCHEMA, TS, conform
from ..kernel import gaps as gp
from ..kernel.candles import rollup, sparse_many
from ..kernel.grid import densify, vwap, window_start, window_width_us
from .frames import compact as _compact
from .frames import featurize, merge_gaps, quarantine_rows, tfm_floor, warm_state

_SERIES = [c.EXCHANGE, c.SYMBOL]
_WINDOW = [c.EXCHANGE, c.SYMBOL, c.TIMESTAMP_IN]
_CURSOR_SCHEMA = {c.EXCHANGE: pl.String(), c.SYMBOL: pl.String(), c.TIMEFRAME: pl.String(), "next_start": TS,
                  c.CLOSE: pl.Float64()}
_EMITTED_SCHEMA = {c.EXCHANGE: pl.String(), c.SYMBOL: pl.String(), c.TIMEFRAME: pl.String(), c.TIMESTAMP_IN: TS,
                   c.REVISION: pl.Int64(), c.LATE_TRADES: pl.Int64()}
_FIRST_SEEN_SCHEMA = {c.EXCHANGE: pl.String(), c.SYMBOL: pl.String(), c.TIMESTAMP_IN: TS}
_W = "_base_window_us"  # base window start of a retained tick, computed once when it arrives
_NO_LATE = pl.DataFrame(schema=QUARANTINE_SCHEMA)
_NO_CANDLES = pl.DataFrame(schema=CANDLE_SCHEMA)
_TICK_POLARS_SCHEMA = pl.DataFrame(schema=TICK_SCHEMA).schema


@dataclass
class EngineOutput:
    """What one step produced: candle rows (new and revised), ticks too late to revise, and counts."""

    candles: pl.DataFrame
    late: pl.DataFrame  # quarantine rows of ticks older than the revision horizon
    accepted: int = 0
    duplicates: int = 0
    revisions: int = 0  # revised candle rows (one per timeframe a late trade falls in)
    late_trades: int = 0  # trades that arrived after their window was emitted


@dataclass
class CandleEngine:
    """Open windows per (exchange, symbol, timeframe) as state; `step` folds in a batch and emits the windows
    the watermark has passed: watermark = max(latest event time, clock now) - lateness."""

    timeframes: Sequence[str] = tfm.ALL_TIMEFRAMES
    lateness: timedelta = timedelta(seconds=1)
    horizon: timedelta = timedelta(minutes=2)  # how long after emission a window still takes revisions
    ticks: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema={**TICK_SCHEMA, _W: pl.Int64()}))
    sparse: pl.DataFrame | None = None  # base-timeframe windows that can still change (inside the horizon)
    sparse_cold: pl.DataFrame | None = None  # older base windows, kept only to roll up the longer timeframes
    first_seen: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=_FIRST_SEEN_SCHEMA))
    cursor: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=_CURSOR_SCHEMA))
    emitted: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=_EMITTED_SCHEMA))
    tail: pl.DataFrame | None = None
    gaps: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=gp.GAP_SCHEMA))
    max_event: datetime | None = None
    # Kind and contract size per series (contract/instruments.INSTRUMENT_SCHEMA); unlisted series are linear.
    instruments: pl.DataFrame | None = None

    def __post_init__(self) -> None:
        self.timeframes = tuple(sorted({tfm.normalize(t) for t in self.timeframes}, key=tfm.duration_us))
        self.base = self.timeframes[0]
        # Cheap bookkeeping so a step with nothing to close costs next to nothing.
        self._due: dict[str, datetime | None] = {tf: None for tf in self.timeframes}
        self._emitted_upto: dict[str, datetime | None] = {tf: None for tf in self.timeframes}
        self._pruned_at: datetime | None = None
        self._known: set[tuple[str, str]] = set()
        self._pending: list[pl.DataFrame] = []  # admitted ticks not folded in yet
        self._pending_min: datetime | None = None
        self._fold_now = False
        self._fresh: dict[str, pl.DataFrame] = {}  # keys emitted in the current step, per timeframe
        self._late_now = 0  # late trades folded in during the current step
        self._resumed: pl.DataFrame | None = None

    # -- public -------------------------------------------------------------------------------------------
    def warm(self, candles: pl.DataFrame, *, restarted_at: datetime | None = None) -> None:
        """Resume from candles already in the sink: features continue, the grid continues after the last
        stored window, and (given `restarted_at`) everything from there to the restart is marked gap = feed."""
        if candles.height == 0:
            return
        self.tail, self.cursor = warm_state(candles, self.timeframes)
        self._sync_due()
        # Ticks before this were folded into windows an earlier run wrote; their other ticks are gone.
        self._resumed = self.cursor.group_by(_SERIES).agg(pl.col("next_start").min().alias("_resume"))
        if restarted_at is not None:
            self.add_gaps(self._resumed.select(
                *_SERIES, pl.col("_resume").alias(gp.GAP_START), pl.lit(restarted_at).cast(TS).alias(gp.GAP_END),
                pl.lit("restart").alias(gp.GAP_REASON),
            ))

    def add_gaps(self, gaps: pl.DataFrame | Sequence[FeedGap]) -> None:
        """Remember intervals of missing data; windows overlapping them are emitted with gap = feed."""
        self.gaps = merge_gaps(self.gaps, gaps)

    def step(self, ticks: pl.DataFrame, *, now: datetime, final: bool = False) -> EngineOutput:
        """Fold in `ticks`, then emit every window whose end the watermark passed (all windows up to the last
        trade's when `final`), and a new revision of every already-emitted window the ticks changed."""
        late, taken, dups = _NO_LATE, 0, 0
        if ticks.height:
            admitted, late = self._admit(ticks, now)
            fresh, dups = self._accept(admitted) if admitted.height else (admitted, 0)
            taken = fresh.height
            if taken:
                self._pending.append(fresh)
        wm = self._watermark(now)
        if not (final or self._fold_now or any(self._closes(tf, wm) for tf in self.timeframes)):
            # Nothing can close and nothing was revised: the windows are folded when something does.
            return EngineOutput(candles=_NO_CANDLES, late=late, accepted=taken, duplicates=dups)
        accepted = pl.concat(self._pending) if self._pending else self.ticks.clear()
        self._pending, self._pending_min, self._fold_now = [], None, False
        touched = self._update_sparse(accepted)
        self._fresh = {}
        rows = [self._emit_new(tf, wm) for tf in self.timeframes if self._closes(tf, wm)]
        if final:
            rows += [self._emit_new(tf, None) for tf in self.timeframes]
        if self._fresh:
            self._sync_due()
        revised = []
        if accepted.height:
            oldest = accepted[c.TIMESTAMP].min()
            revised = [self._revise(tf, touched, accepted) for tf in self.timeframes
                       if self._emitted_upto[tf] is not None and oldest < self._emitted_upto[tf]]
        out = [f for f in rows + revised if f is not None and f.height]
        candles = _NO_CANDLES
        if out:
            # Finalize rows and add features from the retained tail; revisions do not move the tail.
            candles, self.tail = featurize(pl.concat(out, how="vertical_relaxed"), self.tail, now)
        self._prune()
        n_rev = sum(f.height for f in revised if f is not None)
        late_now, self._late_now = self._late_now, 0
        return EngineOutput(candles=candles, late=late, accepted=taken, duplicates=dups, revisions=n_rev,
                            late_trades=late_now)

    # -- steps ----------------------------------------------------------------------------------------------
    def _admit(self, ticks: pl.DataFrame, now: datetime) -> tuple[pl.DataFrame, pl.DataFrame]:
        """On arrival: (ticks that can still change a candle, quarantine rows of those that cannot)."""
        if ticks.schema != _TICK_POLARS_SCHEMA:
            ticks = conform(ticks, TICK_SCHEMA)
        floor = self._revision_floor()
        late = _NO_LATE
        lo, hi = ticks.select(pl.col(c.TIMESTAMP).min().alias("lo"), pl.col(c.TIMESTAMP).max().alias("hi")).row(0)
        if floor is not None and lo < floor:
            late = quarantine_rows(ticks.filter(pl.col(c.TIMESTAMP) < floor), now, self._horizon_reason())
            ticks = ticks.filter(pl.col(c.TIMESTAMP) >= floor)
        if self._resumed is not None and ticks.height:
            marked = ticks.join(self._resumed, on=_SERIES, how="left")
            stale = pl.col("_resume").is_not_null() & (pl.col(c.TIMESTAMP) < pl.col("_resume"))
            if marked.select(stale.any()).item():
                old = marked.filter(stale).drop("_resume")
                late = pl.concat([late, quarantine_rows(old, now, "its window was written by an earlier run")])
                ticks = marked.filter(~stale).drop("_resume")
        if ticks.height:
            self.max_event = hi if self.max_event is None else max(self.max_event, hi)
            self._pending_min = lo if self._pending_min is None else min(self._pending_min, lo)
            # A tick inside an emitted window revises it: fold at once rather than at the next close.
            upto = [v for v in self._emitted_upto.values() if v is not None]
            self._fold_now = self._fold_now or bool(upto and lo < max(upto))
        return ticks, late

    def _accept(self, ticks: pl.DataFrame) -> tuple[pl.DataFrame, int]:
        """Fold admitted ticks into the retained ones, each trade once: (new ticks, duplicates dropped)."""
        key = [c.EXCHANGE, c.SYMBOL, c.ID]
        has_id = pl.col(c.ID).is_not_null()
        width = tfm.duration_us(self.base)
        # One query per batch: a batch is small, and each separate Polars call costs more than its work.
        keyed = ticks.lazy().filter(has_id).unique(key, keep="first", maintain_order=True)
        keyed = keyed.join(self.ticks.lazy().select(key), on=key, how="anti")
        fresh = pl.concat([keyed, ticks.lazy().filter(~has_id)]).with_columns(
            (pl.col(c.TIMESTAMP).dt.epoch("us") // width * width).alias(_W)
        ).collect(engine="in-memory")
        if fresh.height:
            self.ticks = _compact(pl.concat([self.ticks, fresh]))
        return fresh, ticks.height - fresh.height

    def _update_sparse(self, accepted: pl.DataFrame) -> pl.DataFrame:
        """Recompute the base windows the new ticks fall in from the retained ticks; returns those windows."""
        if accepted.height == 0:
            return accepted.select(*_SERIES, pl.col(c.TIMESTAMP).alias(c.TIMESTAMP_IN))
        keys = accepted.select(*_SERIES, _W).unique()
        touched = keys.select(*_SERIES, pl.col(_W).cast(TS).alias(c.TIMESTAMP_IN))
        mine = self.ticks.join(keys, on=[*_SERIES, _W], how="semi")
        fresh = sparse_many(mine, self.base, self.instruments)
        if self.sparse is None:
            self.sparse = fresh
        else:
            self.sparse = _compact(pl.concat([self.sparse.join(touched, on=_WINDOW, how="anti"), fresh]))
        # A series seen for the first time makes its first window due.
        if any(key not in self._known for key in touched.select(_SERIES).unique().iter_rows()):
            firsts = touched.group_by(_SERIES).agg(pl.col(c.TIMESTAMP_IN).min())
            new = firsts.join(self.first_seen, on=_SERIES, how="anti")
            self.first_seen = pl.concat([self.first_seen, new])
            self._known.update(new.select(_SERIES).iter_rows())
        first = touched[c.TIMESTAMP_IN].min()
        for tf in self.timeframes:
            start = tfm_floor(first, tfm.duration_us(tf))
            due = self._due[tf]
            self._due[tf] = start if due is None else min(due, start)
        return touched

    def _sparse_since(self, since: datetime | None) -> pl.DataFrame:
        """Base windows starting at or after `since` (all when None), cold and hot together."""
        parts = [p for p in (self.sparse_cold, self.sparse) if p is not None and p.height]
        if not parts:
            return self.sparse
        if since is not None:
            parts = [p.filter(pl.col(c.TIMESTAMP_IN) >= since) for p in parts]
        return pl.concat(parts) if len(parts) > 1 else parts[0]

    def _closes(self, tf: str, wm: datetime) -> bool:
        """Whether the watermark has passed the end of the earliest window of `tf` not yet emitted (counting
        the windows of ticks still waiting to be folded in)."""
        width = tfm.duration_us(tf)
        candidates = [d for d in (self._due[tf], self._pending_min and tfm_floor(self._pending_min, width)) if d]
        return bool(candidates) and min(candidates) + timedelta(microseconds=width) <= wm

    def _sync_due(self) -> None:
        """Recompute the earliest pending window and the newest emitted one per timeframe from the cursor."""
        for tf in self.timeframes:
            mine = self.cursor.filter(pl.col(c.TIMEFRAME) == tf)
            nxt = mine["next_start"]
            pending = None
            waiting = self.first_seen.join(mine.select(_SERIES), on=_SERIES, how="anti")
            if waiting.height:
                pending = tfm_floor(waiting[c.TIMESTAMP_IN].min(), tfm.duration_us(tf))
            candidates = [v for v in (nxt.min() if nxt.len() else None, pending) if v is not None]
            self._due[tf] = min(candidates) if candidates else None
            self._emitted_upto[tf] = nxt.max() if nxt.len() else None

    def _watermark(self, now: datetime) -> datetime:
        """max(latest event time, now) - lateness."""
        latest = max(self.max_event, now) if self.max_event is not None else now
        return latest - self.lateness

    def _emit_new(self, tf: str, wm: datetime | None) -> pl.DataFrame | None:
        """Windows of `tf` not emitted yet that the watermark `wm` has closed (None: every window up to each
        series' last trade, at the end of the input)."""
        if self.sparse is None:
            return None
        width = tfm.duration_us(tf)
        end = None if wm is None else tfm_floor(wm, width)
        cursor = self.cursor.filter(pl.col(c.TIMEFRAME) == tf).drop(c.TIMEFRAME)
        since = self._due[tf] if wm is not None else None
        pool = self._sparse_since(since)
        sparse = pool.lazy() if tf == self.base else rollup(pool.lazy(), tf)
        sparse = sparse.join(cursor.lazy(), on=_SERIES, how="left").filter(
            pl.col("next_start").is_null() | (pl.col(c.TIMESTAMP_IN) >= pl.col("next_start"))
        ).drop("next_start", c.CLOSE + "_right", strict=False)
        if end is not None:
            sparse = sparse.filter(pl.col(c.TIMESTAMP_IN) < end)
        dense = densify(sparse, tf, end=end, prior_close=cursor.lazy()).collect(engine="in-memory")
        if dense.height == 0:
            return None
        if self.gaps.height:
            dense = gp.mark_feed_gaps(dense.lazy(), self._closed_gaps(), tf).collect(engine="in-memory")
        last = dense.sort(c.TIMESTAMP_IN).group_by(_SERIES).agg(pl.col(c.TIMESTAMP_IN).last(), pl.col(c.CLOSE).last())
        moved = last.select(*_SERIES, pl.lit(tf).alias(c.TIMEFRAME),
                            (pl.col(c.TIMESTAMP_IN).dt.epoch("us") + width).cast(TS).alias("next_start"), c.CLOSE)
        self.cursor = pl.concat([self.cursor.join(moved, on=list(c.SERIES_KEY), how="anti"), moved.select(list(_CURSOR_SCHEMA))])
        keys = dense.select(*_SERIES, pl.lit(tf).alias(c.TIMEFRAME), c.TIMESTAMP_IN,
                            pl.lit(0, pl.Int64).alias(c.REVISION), pl.lit(0, pl.Int64).alias(c.LATE_TRADES))
        self.emitted = _compact(pl.concat([self.emitted, keys]))
        self._fresh[tf] = pl.concat([self._fresh[tf], keys]) if tf in self._fresh else keys
        return dense.with_columns(pl.lit(0, pl.Int64).alias("_revision"), pl.lit(0, pl.Int64).alias("_late"))

    def _revise(self, tf: str, touched: pl.DataFrame, accepted: pl.DataFrame) -> pl.DataFrame | None:
        """New revisions of already-emitted `tf` windows that the accepted ticks fall in."""
        if touched.height == 0 or self.emitted.height == 0:
            return None
        windows = touched.select(*_SERIES, window_start(pl.col(c.TIMESTAMP_IN), tf).alias(c.TIMESTAMP_IN)).unique()
        done = self.emitted.filter(pl.col(c.TIMEFRAME) == tf).group_by(_WINDOW).agg(
            pl.col(c.REVISION).max(), pl.col(c.LATE_TRADES).max())
        hit = windows.join(done, on=_WINDOW, how="inner")
        # Windows emitted in this very step already include these ticks.
        if tf in self._fresh:
            hit = hit.join(self._fresh[tf].select(_WINDOW), on=_WINDOW, how="anti")
        if hit.height == 0:
            return None
        counts = accepted.select(*_SERIES, window_start(pl.col(c.TIMESTAMP), tf).alias(c.TIMESTAMP_IN)).group_by(_WINDOW).len()
        oldest = tfm_floor(hit[c.TIMESTAMP_IN].min(), tfm.duration_us(tf))
        base_windows = self._sparse_since(oldest).with_columns(window_start(pl.col(c.TIMESTAMP_IN), tf).alias("_w"))
        source = base_windows.join(hit.select(*_SERIES, pl.col(c.TIMESTAMP_IN).alias("_w")), on=[*_SERIES, "_w"], how="semi")
        rows = source.drop("_w").lazy() if tf == self.base else rollup(source.drop("_w").lazy(), tf)
        rows = rows.collect(engine="in-memory").join(hit, on=_WINDOW)
        rows = rows.join(counts, on=_WINDOW, how="left").with_columns(
            (pl.col(c.REVISION) + 1).alias("_revision"), (pl.col(c.LATE_TRADES) + pl.col("len").fill_null(0)).alias("_late"),
            vwap(), pl.lit(None, pl.String).alias(c.GAP),
        )
        if self.gaps.height:
            rows = gp.mark_feed_gaps(rows.lazy(), self._closed_gaps(), tf).collect(engine="in-memory")
        self.emitted = _compact(pl.concat([self.emitted, rows.select(
            *_SERIES, pl.lit(tf).alias(c.TIMEFRAME), c.TIMESTAMP_IN,
            pl.col("_revision").alias(c.REVISION), pl.col("_late").alias(c.LATE_TRADES))]))
        if tf == self.base:
            self._late_now = int(rows["len"].fill_null(0).sum())
        return rows.drop(c.REVISION, c.LATE_TRADES, "len")

    def _closed_gaps(self) -> pl.LazyFrame:
        """Gap intervals, an outage still going on reaching up to the newest event time seen."""
        newest = pl.lit(self.max_event).cast(TS) if self.max_event is not None else pl.col(gp.GAP_START)
        return self.gaps.lazy().with_columns(pl.col(gp.GAP_END).fill_null(newest))

    def _horizon_reason(self) -> str:
        """Why a tick older than the revision horizon is quarantined."""
        return f"trade arrived after its window's revision horizon ({self.horizon.total_seconds():.0f}s)"

    def _revision_floor(self) -> datetime | None:
        """Ticks older than this cannot revise anything any more: the horizon behind the base cursor."""
        if self.max_event is None:
            return None
        return self.max_event - self.lateness - self.horizon

    def _prune(self) -> None:
        """Drop state nobody can need again, so memory stays flat on a long run."""
        floor = self._revision_floor()
        if floor is None:
            return
        mark = tfm_floor(floor, tfm.duration_us(self.base))
        if self._pruned_at is not None and mark <= self._pruned_at:
            return
        self._pruned_at = mark
        self.ticks = self.ticks.filter(pl.col(_W) >= tfm.epoch_us(mark))
        longest = window_start(pl.lit(floor).cast(TS), self.timeframes[-1])
        if self.sparse is not None:
            # Base windows behind the horizon can no longer change: move them to the cold part.
            settled = pl.col(c.TIMESTAMP_IN) < mark
            cold = self.sparse.filter(settled)
            self.sparse = self.sparse.filter(~settled)
            parts = [p for p in (self.sparse_cold, cold) if p is not None and p.height]
            self.sparse_cold = pl.concat(parts).filter(pl.col(c.TIMESTAMP_IN) >= longest).rechunk() if parts else None
        # A window can still be revised only if it ends after the floor: keep those, per timeframe.
        width = window_width_us()
        floor_us = tfm.epoch_us(floor)
        self.emitted = self.emitted.filter(pl.col(c.TIMESTAMP_IN).dt.epoch("us") >= floor_us // width * width)
        self.gaps = self.gaps.filter(pl.col(gp.GAP_END).is_null() | (pl.col(gp.GAP_END) >= longest))
