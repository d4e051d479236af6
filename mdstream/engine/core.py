"""The engine core: one pure fold (state, new trade windows, watermark, gaps) -> (closed candles with features,
new state). The backfill folds once per day, the replay once per slice, the stream whenever a window closes or an
emitted one changes; so the same ticks give the same candles whichever job folds them.

All window arithmetic is on epoch microseconds (integers): a trade stamped in the year 50,000 is a number like
any other here, never a Python datetime that overflows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from ..contract import columns as c
from ..contract import timeframes as tfm
from ..contract.schema import CANDLE_SCHEMA, TS
from ..kernel import gaps as gp
from ..kernel.candles import rollup
from ..kernel.features import TAIL_ROWS, add_features, advance_tail
from ..kernel.grid import fill_grid, finalize
from ..kernel.plans import SMALL_PLAN
from .holes import split_holes
from .state import CURSOR_SCHEMA, NEXT, SERIES, STARTED, WINDOW, SeriesState

REEMIT = "_reemit"  # True on a row of a window emitted by an earlier fold (the caller numbers its revision)
GAP_INPUT_END = "input ends"
_LO, _HI, _W, _PRIOR, _CHANGED, _NEXT, _STARTED = "_lo", "_hi", "_w", "_prior", "_changed", "_next", "_started"
_CLOSE = "_close"
_KEY = list(c.SERIES_KEY)
_NO_CANDLES = pl.DataFrame(schema={**CANDLE_SCHEMA, REEMIT: pl.Boolean()})


@dataclass(frozen=True)
class Spec:
    """What every fold of one job shares: the timeframes (shortest first), the tail rows kept per series, and the
    longest run of empty windows one fold builds (a longer one is a feed gap whose inside is not built)."""

    timeframes: tuple[str, ...] = tfm.ALL_TIMEFRAMES
    tail_rows: int = TAIL_ROWS
    max_span_us: int = tfm.US_PER_DAY

    def __post_init__(self) -> None:
        object.__setattr__(self, "timeframes", tuple(sorted({tfm.normalize(t) for t in self.timeframes}, key=tfm.duration_us)))

    @property
    def base(self) -> str:
        """The shortest timeframe: open windows are kept in it, every other one is rolled up from it."""
        return self.timeframes[0]

    def widths(self) -> pl.DataFrame:
        """(timeframe, _w): window length in us of every timeframe."""
        return pl.DataFrame({c.TIMEFRAME: list(self.timeframes), _W: [tfm.duration_us(t) for t in self.timeframes]},
                            schema={c.TIMEFRAME: pl.String(), _W: pl.Int64()})


def upsert_windows(open_: pl.DataFrame, windows: pl.DataFrame) -> pl.DataFrame:
    """`open_` with every window of `windows` replaced by (or added as) its new row."""
    if windows.height == 0:
        return open_
    if open_.height == 0:
        return windows
    first = windows.get_column(c.TIMESTAMP_IN).min()
    # Only rows at or after the earliest new window can share a key with one: the rest is kept as is.
    older = open_.filter(pl.col(c.TIMESTAMP_IN) < first)
    recent = open_.filter(pl.col(c.TIMESTAMP_IN) >= first).join(windows, on=WINDOW, how="anti")
    out = pl.concat([older, recent, windows.select(open_.columns)])
    return out.rechunk() if out.n_chunks() > 8 else out


def fold(
    state: SeriesState,
    windows: pl.DataFrame,
    spec: Spec,
    *,
    now: datetime,
    until_us: int | None = None,
    final_us: int | None = None,
    start_us: int | None = None,
    keep_us: int | None = None,
    changed: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, SeriesState]:
    """Fold new trade windows into `state` and emit what closed.

    windows: trade windows of the shortest timeframe (kernel sparse rows), new or recomputed; they replace open
        windows with the same key. One that lies before a started series' cursor changes emitted windows: those
        of every timeframe from it up to the cursor are emitted again (flag REEMIT), later ones too, as their
        features follow from it.
    until_us: every window ending at or before it is emitted (the watermark);
    final_us: the end of the input: every window up to the one holding it is emitted, that one marked feed;
    start_us: no window starting before it is built (a backfill day);
    keep_us: open windows and gaps from here on are kept for later revisions (None: only what open windows need);
    changed: (exchange, symbol, _changed us): the earliest instant per series whose emitted windows must be
        emitted again although no trade window changed (a gap found after they were emitted).
    Windows are built densely per series (trades 0 where nothing traded) except inside a run of empty windows
    longer than spec.max_span_us, which becomes a feed gap. Returns (candles: contract columns + REEMIT, state).
    """
    open_ = upsert_windows(state.open, windows)
    cursor = _with_new_series(state.cursor, windows, spec)
    bounds = _bounds(cursor, windows, spec, until_us=until_us, final_us=final_us, start_us=start_us, changed=changed)
    if state.tail is not None and state.tail.height:
        bounds = _prior_from_tail(bounds, state.tail)
    gaps = state.gaps
    segments = bounds.filter(pl.col(_HI) > pl.col(_LO))
    if segments.height and segments.select((pl.col(_HI).max() - pl.col(_LO).min()) > spec.max_span_us).item():
        segments, holes = split_holes(segments, open_, spec.base, spec.max_span_us)
        if holes.height:
            gaps = pl.concat([gaps, holes])
    featured, tail = None, state.tail
    if segments.height:
        marks = gaps
        if final_us is not None:
            at = pl.lit(final_us).cast(TS)
            ends = segments.select(SERIES).unique().select(
                *SERIES, at.alias(gp.GAP_START), at.alias(gp.GAP_END), pl.lit(GAP_INPUT_END).alias(gp.GAP_REASON))
            marks = pl.concat([marks, ends])
        featured = _build(open_, segments, state.tail, marks, spec, now)
    out = _NO_CANDLES
    if featured is not None and featured.height:
        old = cursor.select(*_KEY, pl.col(NEXT).alias(_NEXT), pl.col(STARTED).alias(_STARTED))
        flag = featured.join(old, on=_KEY, how="left").select(
            (pl.col(_STARTED) & (pl.col(c.TIMESTAMP_IN) < pl.col(_NEXT))).fill_null(False).alias(REEMIT))
        out = featured.select(list(CANDLE_SCHEMA)).with_columns(flag.to_series())
        # rows not emitted before lie past every series' cursor, so past its tail: no window of the tail again
        again = bool(out.get_column(REEMIT).any())
        tail = advance_tail(state.tail, featured, spec.tail_rows, overlap=again)
        if state.tail is not None and again:
            out = _without_unchanged(out, state.tail)
    new_state = SeriesState(cursor=_advance(bounds, featured), tail=tail, open=open_, gaps=gaps)
    return out, _pruned(new_state, keep_us)


# What a reader sees of a window: a re-emission that changes none of these is not emitted.
_VALUES = [name for name in CANDLE_SCHEMA if name not in (*_KEY, c.TIMESTAMP_IN, c.TIMESTAMP_OUT, c.LATENCY_MS,
                                                            c.REVISION, c.LATE_TRADES)]


def _without_unchanged(out: pl.DataFrame, tail: pl.DataFrame) -> pl.DataFrame:
    """`out` without re-emitted rows equal in every value to the row emitted before (held in the tail): rebuilding
    is bit-identical when nothing changed, so only windows a late trade or a new gap really changed remain."""
    window = [*_KEY, c.TIMESTAMP_IN]
    again = out.filter(pl.col(REEMIT))
    before = tail.select(window + _VALUES)
    same = again.select(window + _VALUES).join(before, on=window + _VALUES, how="semi", nulls_equal=True)
    if same.height == 0:
        return out
    return out.join(same.select(window), on=window, how="anti")


def _with_new_series(cursor: pl.DataFrame, windows: pl.DataFrame, spec: Spec) -> pl.DataFrame:
    """The cursor plus every series first seen in `windows`, not started, at its first trade window."""
    if windows.height == 0:
        return cursor
    ts = pl.col(c.TIMESTAMP_IN).dt.epoch("us")
    firsts = windows.group_by(SERIES).agg(ts.min().alias("_first"))
    if cursor.height:
        firsts = firsts.join(cursor.select(SERIES).unique(), on=SERIES, how="anti")
    if firsts.height == 0:
        return cursor
    w = pl.col(_W)
    fresh = firsts.join(spec.widths(), how="cross").select(
        c.EXCHANGE, c.SYMBOL, c.TIMEFRAME, (pl.col("_first") // w * w).cast(TS).alias(NEXT),
        pl.lit(None, pl.Float64).alias(c.CLOSE), pl.lit(False).alias(STARTED))
    return pl.concat([cursor, fresh.cast(CURSOR_SCHEMA)])


def _bounds(cursor: pl.DataFrame, windows: pl.DataFrame, spec: Spec, *, until_us, final_us, start_us,
            changed) -> pl.DataFrame:
    """One row per cursor row: [_lo, _hi) window starts to build (us), the cursor (_next, _started) and the close
    carried into _lo (_prior)."""
    ts = pl.col(c.TIMESTAMP_IN).dt.epoch("us")
    b = cursor.select(*_KEY, pl.col(NEXT).dt.epoch("us").alias(_NEXT), pl.col(c.CLOSE).alias(_PRIOR),
                      pl.col(c.CLOSE).alias(_CLOSE), pl.col(STARTED).alias(_STARTED)).join(spec.widths(), on=c.TIMEFRAME)
    touched = [windows.group_by(SERIES).agg(ts.min().alias(_CHANGED))] if windows.height else []
    if changed is not None and changed.height:
        touched.append(changed.select(*SERIES, pl.col(_CHANGED).cast(pl.Int64)))
    if touched:
        b = b.join(pl.concat(touched).group_by(SERIES).agg(pl.col(_CHANGED).min()), on=SERIES, how="left")
    else:
        b = b.with_columns(pl.lit(None, pl.Int64).alias(_CHANGED))
    w = pl.col(_W)
    floor = lambda e: e // w * w  # noqa: E731
    # A change before the cursor: a started series builds again from it; one not started begins there.
    lo = pl.min_horizontal(pl.col(_NEXT), floor(pl.col(_CHANGED)))
    if start_us is not None:
        lo = pl.max_horizontal(lo, floor(pl.lit(start_us)))
    if final_us is not None:
        hi = floor(pl.lit(final_us)) + w
    elif until_us is not None:
        hi = floor(pl.lit(until_us))
    else:
        hi = pl.lit(None, pl.Int64)
    # Emitted windows built again reach up to the cursor, closable or not.
    hi = pl.when(pl.col(_STARTED)).then(pl.max_horizontal(hi, pl.col(_NEXT))).otherwise(hi)
    return b.with_columns(lo.alias(_LO), hi.fill_null(lo).alias(_HI)).select(
        *_KEY, _LO, _HI, _W, _NEXT, _PRIOR, _CLOSE, _STARTED)


def _prior_from_tail(b: pl.DataFrame, tail: pl.DataFrame) -> pl.DataFrame:
    """Where a started series is built again from before its cursor, the close carried in is that of its last
    emitted row before _lo."""
    again = pl.col(_STARTED) & (pl.col(_LO) < pl.col(_NEXT)) & (pl.col(_HI) > pl.col(_LO))
    rebuilt = b.filter(again)
    if rebuilt.height == 0:
        return b
    before = tail.select(*_KEY, pl.col(c.TIMESTAMP_IN).dt.epoch("us").alias("_at"), pl.col(c.CLOSE).alias("_tail_close"))
    found = (rebuilt.select(*_KEY, _LO).join(before, on=_KEY).filter(pl.col("_at") < pl.col(_LO))
             .sort("_at").group_by(_KEY).agg(pl.col("_tail_close").last()))
    return b.join(found, on=_KEY, how="left").with_columns(
        pl.when(again).then(pl.col("_tail_close")).otherwise(pl.col(_PRIOR)).alias(_PRIOR)).drop("_tail_close")


def _build(open_: pl.DataFrame, segments: pl.DataFrame, tail: pl.DataFrame | None, marks: pl.DataFrame, spec: Spec,
           now: datetime) -> pl.DataFrame:
    """Dense candles of every segment, feed gaps marked, finalized, with features continuing `tail`."""
    span = segments.group_by(c.TIMEFRAME).agg(pl.col(_LO).min(), pl.col(_HI).max())
    ranges = {tf: (lo, hi) for tf, lo, hi in span.iter_rows()}
    ts = pl.col(c.TIMESTAMP_IN).dt.epoch("us")
    base = open_.lazy()
    plans = []
    for tf in spec.timeframes:
        if tf not in ranges:
            continue
        lo, hi = ranges[tf]
        # One scalar range per timeframe: the grid join keeps only each series' own segments.
        rows = base.filter((ts >= lo) & (ts < hi))
        plans.append(rows if tf == spec.base else rollup(rows, tf))
    frames = pl.collect_all(plans, engine="in-memory", optimizations=SMALL_PLAN)
    sparse = pl.concat(frames) if len(frames) > 1 else frames[0]
    bounds = segments.select(*_KEY, _LO, (pl.col(_HI) - pl.col(_W)).alias(_HI), _PRIOR)
    dense = fill_grid(sparse.lazy(), bounds.lazy())
    if marks.height:
        dense = gp.mark_feed_gaps(dense, marks.lazy(), list(ranges))
    return add_features(finalize(dense, now=now), prior=tail).collect(engine="in-memory", optimizations=SMALL_PLAN)


def _advance(bounds: pl.DataFrame, featured: pl.DataFrame | None) -> pl.DataFrame:
    """The cursor after the fold: past everything built or skipped; the close of the last window built."""
    built = pl.col(_HI) > pl.col(_LO)
    b = bounds
    if featured is not None and featured.height:
        last = featured.group_by(_KEY).agg(pl.col(c.CLOSE).sort_by(c.TIMESTAMP_IN).last().alias("_built"))
        b = b.join(last, on=_KEY, how="left")
    else:
        b = b.with_columns(pl.lit(None, pl.Float64).alias("_built"))
    started = pl.col(_STARTED)
    nxt = (pl.when(built).then(pl.max_horizontal(_HI, _NEXT))
           .when(started).then(pl.col(_NEXT)).otherwise(pl.col(_LO)))
    return b.select(
        *_KEY, nxt.cast(TS).alias(NEXT), pl.coalesce("_built", _CLOSE).alias(c.CLOSE), (started | built).alias(STARTED),
    ).cast(CURSOR_SCHEMA)


def _pruned(state: SeriesState, keep_us: int | None) -> SeriesState:
    """`state` without open windows and gaps that no window still to be emitted (or revised) can need."""
    if state.cursor.height == 0:
        return state
    need = state.cursor.select(pl.col(NEXT).dt.epoch("us").min()).item()
    floor = need if keep_us is None else min(need, keep_us)
    open_ = state.open
    ts = pl.col(c.TIMESTAMP_IN).dt.epoch("us")
    if open_.height and open_.select(ts.min()).item() < floor:
        open_ = open_.filter(ts >= floor)
    gaps = state.gaps
    if gaps.height:
        gaps = gaps.filter(pl.col(gp.GAP_END).is_null() | (pl.col(gp.GAP_END).dt.epoch("us") >= floor))
    return state.evolve(open=open_, gaps=gaps)
