"""Small pure helpers of the stream engine: window arithmetic, gap bookkeeping, quarantine rows."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Sequence

import polars as pl

from .. import columns as c
from .. import gaps as gp
from ..schema import QUARANTINE_SCHEMA, TS
from ..sources.base import FeedGap

_GAP_KEY = [c.EXCHANGE, c.SYMBOL, gp.GAP_START]


def compact(frame: pl.DataFrame, max_chunks: int = 16) -> pl.DataFrame:
    """`frame` rechunked once appends have split it into many pieces (every later scan pays per chunk)."""
    return frame.rechunk() if frame.n_chunks() > max_chunks else frame


def tfm_floor(when: datetime, width_us: int) -> datetime:
    """The window boundary at or before `when`: floor(when / width) * width."""
    us = int(when.timestamp()) * 1_000_000 + when.microsecond
    return datetime.fromtimestamp(0, tz=when.tzinfo) + timedelta(microseconds=us // width_us * width_us)


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
