"""Feed gaps as the engine keeps them: one row per symbol (null: every symbol of the exchange), end null while
the outage lasts; and which emitted windows a newly learnt gap reaches."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from ..contract import columns as c
from ..contract.feed import FeedGap
from ..kernel import gaps as gp
from .output import width_us
from .state import NEXT, STARTED

_GAP_KEY = [c.EXCHANGE, c.SYMBOL, gp.GAP_START]


def gaps_frame(gaps: pl.DataFrame | Sequence[FeedGap]) -> pl.DataFrame:
    """Feed gaps as rows of gaps.GAP_SCHEMA, one per symbol (a FeedGap without symbols: symbol null, all)."""
    if isinstance(gaps, pl.DataFrame):
        return gaps.select(list(gp.GAP_SCHEMA)).cast(gp.GAP_SCHEMA)
    rows = [
        {c.EXCHANGE: g.exchange, c.SYMBOL: s, gp.GAP_START: g.start, gp.GAP_END: g.end, gp.GAP_REASON: g.reason}
        for g in gaps for s in (g.symbols or (None,))
    ]
    return pl.DataFrame(rows, schema=gp.GAP_SCHEMA) if rows else pl.DataFrame(schema=gp.GAP_SCHEMA)


def merge_gaps(known: pl.DataFrame, new: pl.DataFrame | Sequence[FeedGap]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(`known` gaps plus `new` ones, the new ones that are not the closing of a gap already known). A gap reported
    again with its end replaces the open one it closes (matched on exchange, symbol, start), also when both
    arrive together (a startup gap opened and closed within one batch)."""
    gaps = gaps_frame(new)
    if gaps.height == 0:
        return known, gaps
    closed = gaps.filter(pl.col(gp.GAP_END).is_not_null())
    still_open = gaps.filter(pl.col(gp.GAP_END).is_null()).join(closed, on=_GAP_KEY, how="anti", nulls_equal=True)
    gaps = pl.concat([closed, still_open])
    fresh = gaps.join(known, on=_GAP_KEY, how="anti", nulls_equal=True)
    merged = pl.concat([known.join(gaps, on=_GAP_KEY, how="anti", nulls_equal=True), gaps])
    return merged, fresh


def reopened(fresh: pl.DataFrame, cursor: pl.DataFrame, floor_us: int | None) -> pl.DataFrame | None:
    """(exchange, symbol, _changed us) of series whose already emitted windows a new gap overlaps: they are emitted
    again from the gap's start (not before `floor_us`, the oldest revisable time) so they say feed."""
    if fresh.height == 0 or cursor.height == 0:
        return None
    emitted = cursor.filter(pl.col(STARTED)).group_by(c.EXCHANGE, c.SYMBOL).agg(pl.col(NEXT).max().dt.epoch("us").alias("_upto"))
    start = pl.col(gp.GAP_START).dt.epoch("us")
    exact = fresh.filter(pl.col(c.SYMBOL).is_not_null()).join(emitted, on=[c.EXCHANGE, c.SYMBOL])
    wild = fresh.filter(pl.col(c.SYMBOL).is_null()).drop(c.SYMBOL).join(emitted, on=c.EXCHANGE)
    hit = pl.concat([exact.select(c.EXCHANGE, c.SYMBOL, start.alias("_s"), "_upto"),
                     wild.select(c.EXCHANGE, c.SYMBOL, start.alias("_s"), "_upto")]).filter(pl.col("_s") < pl.col("_upto"))
    if hit.height == 0:
        return None
    changed = hit.select(c.EXCHANGE, c.SYMBOL, (pl.max_horizontal("_s", pl.lit(floor_us)) if floor_us is not None
                                                else pl.col("_s")).alias("_changed"))
    return changed.group_by(c.EXCHANGE, c.SYMBOL).agg(pl.col("_changed").min())


def late_ticks(pending: pl.DataFrame, cursor: pl.DataFrame, base: str) -> pl.DataFrame:
    """(exchange, symbol, timestamp) of the `pending` ticks before their series' started `base` cursor: ticks in
    windows already emitted."""
    started = cursor.filter((pl.col(c.TIMEFRAME) == base) & pl.col(STARTED))
    return pending.join(started.select(c.EXCHANGE, c.SYMBOL, NEXT), on=[c.EXCHANGE, c.SYMBOL]).filter(
        pl.col(c.TIMESTAMP) < pl.col(NEXT)).select(c.EXCHANGE, c.SYMBOL, c.TIMESTAMP)


def cursor_marks(cursor: pl.DataFrame, base: str) -> tuple[int | None, int | None]:
    """(the earliest window end due, the newest emitted `base` window start), epoch us, of a grid cursor."""
    if cursor.height == 0:
        return None, None
    row = cursor.select(
        (pl.col(NEXT).dt.epoch("us") + width_us()).min().alias("due"),
        pl.col(NEXT).filter(pl.col(STARTED) & (pl.col(c.TIMEFRAME) == base)).dt.epoch("us").max().alias("upto"),
    ).row(0)
    return row[0], row[1]


def healed_windows(forgotten: pl.DataFrame, remaining: pl.DataFrame, timeframes: Sequence[str]) -> int:
    """How many windows of `timeframes` the `forgotten` (closed) gaps covered that no `remaining` gap covers."""
    keys = [c.EXCHANGE, c.SYMBOL, c.TIMEFRAME, c.TIMESTAMP_IN]
    was = gp.gap_windows(forgotten.lazy(), timeframes)
    still = gp.gap_windows(remaining.filter(pl.col(gp.GAP_END).is_not_null()).lazy(), timeframes)
    return was.join(still, on=keys, how="anti", nulls_equal=True).select(pl.len()).collect().item()
