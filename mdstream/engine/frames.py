"""Small pure helpers of the stream engine: window arithmetic, gap bookkeeping, quarantine rows, features of
emitted rows, state from stored candles."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Sequence

import polars as pl

from ..contract import columns as c
from ..contract import timeframes as tfm
from ..contract.feed import FeedGap
from ..contract.schema import (
    CANDLE_BASE_SCHEMA,
    CANDLE_SCHEMA,
    QUARANTINE_SCHEMA,
    TS,
    conform,
)
from ..kernel import gaps as gp
from ..kernel.features import add_features, advance_tail
from ..kernel.grid import finalize, window_width_us

_GAP_KEY = [c.EXCHANGE, c.SYMBOL, gp.GAP_START]


def compact(frame: pl.DataFrame, max_chunks: int = 16) -> pl.DataFrame:
    """`frame` rechunked once appends have split it into many pieces (every later scan pays per chunk)."""
    return frame.rechunk() if frame.n_chunks() > max_chunks else frame


def tfm_floor(when: datetime, width_us: int) -> datetime:
    """The window boundary at or before `when`: floor(when / width) * width."""
    return datetime.fromtimestamp(0, tz=when.tzinfo) + timedelta(microseconds=tfm.epoch_us(when) // width_us * width_us)


def gaps_frame(gaps: pl.DataFrame | Sequence[FeedGap]) -> pl.DataFrame:
    """Feed gaps as rows of gaps.GAP_SCHEMA, one per symbol (end null while the outage lasts)."""
    if isinstance(gaps, pl.DataFrame):
        return gaps.select(list(gp.GAP_SCHEMA)).cast(gp.GAP_SCHEMA)
    rows = [
        {c.EXCHANGE: g.exchange, c.SYMBOL: s, gp.GAP_START: g.start, gp.GAP_END: g.end, gp.GAP_REASON: g.reason}
        for g in gaps for s in g.symbols
    ]
    return pl.DataFrame(rows, schema=gp.GAP_SCHEMA) if rows else pl.DataFrame(schema=gp.GAP_SCHEMA)


def merge_gaps(known: pl.DataFrame, new: pl.DataFrame | Sequence[FeedGap]) -> pl.DataFrame:
    """`known` gaps plus `new` ones; a gap reported again with its end replaces the open one it closes,
    also when both arrive together (a startup gap opened and closed within one batch)."""
    gaps = gaps_frame(new)
    if gaps.height == 0:
        return known
    closed = gaps.filter(pl.col(gp.GAP_END).is_not_null())
    still_open = gaps.filter(pl.col(gp.GAP_END).is_null()).join(closed, on=_GAP_KEY, how="anti")
    gaps = pl.concat([closed, still_open])
    return pl.concat([known.join(gaps, on=_GAP_KEY, how="anti"), gaps])


def quarantine_rows(ticks: pl.DataFrame, now: datetime, reason: str) -> pl.DataFrame:
    """Quarantine rows for ticks that can no longer change a candle: kept and counted, never silently dropped."""
    return ticks.select(
        pl.format("{}/{}", c.EXCHANGE, c.SYMBOL).alias(c.Q_SOURCE), pl.lit(None, pl.Int64).alias(c.Q_LINE),
        pl.lit(c.TIMESTAMP).alias(c.Q_FIELD), pl.lit(reason).alias(c.Q_REASON),
        pl.format("{} {} {} {}", c.ID, c.TIMESTAMP, c.PRICE, c.AMOUNT).alias(c.Q_RAW),
        pl.lit(now).cast(TS).alias(c.Q_QUARANTINED_AT),
    ).cast(QUARANTINE_SCHEMA)


def featurize(candles: pl.DataFrame, tail: pl.DataFrame | None, now: datetime) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """(contract rows with features, the new tail): new windows continue `tail` and advance it; a revision
    (`_revision` > 0) reads the tail rows before its own window only and leaves the tail as it is."""
    base = finalize(
        candles.lazy(), now=now, revision=pl.col("_revision"), late_trades=pl.col("_late")
    ).collect(engine="in-memory")
    new = base.filter(pl.col(c.REVISION) == 0)
    featured = add_features(new.lazy(), prior=tail).collect(engine="in-memory") if new.height else None
    if featured is not None:
        tail = advance_tail(tail, featured)
    out = [featured] if featured is not None else []
    for row in base.filter(pl.col(c.REVISION) > 0).iter_slices(1):
        out.append(add_features(row.lazy(), prior=tail).collect(engine="in-memory"))
    return conform(pl.concat(out, how="diagonal_relaxed"), CANDLE_SCHEMA), tail


def warm_state(candles: pl.DataFrame, timeframes: Sequence[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(feature tail, grid cursor) of stored candles: the latest revision of each window of `timeframes`;
    the cursor holds per series the next window start (last stored + one window) and the last close."""
    latest = candles.sort(c.REVISION).unique([*c.SERIES_KEY, c.TIMESTAMP_IN], keep="last")
    latest = latest.filter(pl.col(c.TIMEFRAME).is_in(list(timeframes)))
    featured = add_features(conform(latest, CANDLE_BASE_SCHEMA).lazy()).collect(engine="in-memory")
    last = latest.sort(c.TIMESTAMP_IN).group_by(list(c.SERIES_KEY)).agg(pl.all().last())
    width = window_width_us()
    cursor = last.select(
        c.EXCHANGE, c.SYMBOL, c.TIMEFRAME,
        (pl.col(c.TIMESTAMP_IN).dt.epoch("us") + width).cast(TS).alias("next_start"), c.CLOSE,
    )
    return advance_tail(None, featured), cursor
