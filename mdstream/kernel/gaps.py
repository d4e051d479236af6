"""Known-missing data: intervals of event time during which a feed was down, and the windows they touch."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from ..contract import columns as c
from ..contract import timeframes as tfm
from ..contract.schema import TS
from .grid import window_width_us

GAP_START = "gap_start"
GAP_END = "gap_end"
GAP_REASON = "gap_reason"
GAP_SCHEMA = pl.Schema({c.EXCHANGE: pl.String(), c.SYMBOL: pl.String(), GAP_START: TS, GAP_END: TS,
                        GAP_REASON: pl.String()})

# Exchanges whose trade ids are consecutive per symbol, so a jump in ids proves missing trades.
CONSECUTIVE_ID_PREFIXES = ("binance",)


def empty_gaps() -> pl.LazyFrame:
    """A gap frame with no rows."""
    return pl.LazyFrame(schema=GAP_SCHEMA)


def id_jump_gaps(ticks: pl.DataFrame | pl.LazyFrame | list[pl.DataFrame]) -> pl.LazyFrame:
    """Intervals (previous trade time, next trade time) where consecutive-id exchanges skip ids (diff > 1);
    `ticks` may come already split into series (candles.split_series)."""
    from .candles import split_series
    from .order import ID_NUMBER

    if isinstance(ticks, list):
        parts = ticks
    else:
        parts = split_series(ticks.collect() if isinstance(ticks, pl.LazyFrame) else ticks)
    found = []
    for part in parts:
        if not part[c.EXCHANGE][0].startswith(CONSECUTIVE_ID_PREFIXES):
            continue
        parsed = ID_NUMBER in part.columns and part[ID_NUMBER].null_count() == 0
        ids = part[ID_NUMBER] if parsed else part[c.ID].cast(pl.Int64, strict=False)
        ts = part[c.TIMESTAMP]
        # A day file is already in id order: check in O(n) and sort only when it is not.
        in_order = ids.is_sorted()
        if in_order and ids.null_count() == 0 and ids[-1] - ids[0] == ids.len() - 1:
            continue  # ids are unique per series (validated), so a span of n - 1 leaves no room for a jump
        if not in_order:
            order = ids.arg_sort(nulls_last=True)
            ids, ts = ids.gather(order), ts.gather(order)
        at = (ids.diff() > 1).arg_true()
        if at.len() == 0:
            continue
        before, after = at - 1, at
        found.append(pl.DataFrame({
            c.EXCHANGE: [part[c.EXCHANGE][0]] * at.len(),
            c.SYMBOL: [part[c.SYMBOL][0]] * at.len(),
            GAP_START: ts.gather(before),
            GAP_END: ts.gather(after),
            "_prev": ids.gather(before),
            "_next": ids.gather(after),
        }).select(
            c.EXCHANGE, c.SYMBOL,
            pl.min_horizontal(GAP_START, GAP_END).alias(GAP_START),
            pl.max_horizontal(GAP_START, GAP_END).alias(GAP_END),
            pl.format("trade id jump {}->{}", "_prev", "_next").alias(GAP_REASON),
        ))
    return pl.concat(found).lazy() if found else empty_gaps()


def gap_windows(gaps: pl.LazyFrame, timeframes: str | Sequence[str], *, within: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """(exchange, symbol, timeframe, timestamp_in) of every window of `timeframes` overlapping a gap [start, end].
    An open gap (end null) reaches up to the last window of `within`; a gap with a null symbol covers every
    symbol of its exchange that `within` holds. Given `within` (candles), gaps are clipped to its windows, so a
    long outage costs no more than the candles it marks."""
    names = [timeframes] if isinstance(timeframes, str) else list(timeframes)
    wanted = pl.LazyFrame({c.TIMEFRAME: [tfm.normalize(t) for t in names]}, schema={c.TIMEFRAME: pl.String})
    start, end = pl.col(GAP_START).dt.epoch("us"), pl.col(GAP_END).dt.epoch("us")
    if within is not None:
        ts = pl.col(c.TIMESTAMP_IN).dt.epoch("us")
        series = within.select(c.EXCHANGE, c.SYMBOL).unique()
        wild = gaps.filter(pl.col(c.SYMBOL).is_null()).drop(c.SYMBOL).join(series, on=c.EXCHANGE)
        gaps = pl.concat([gaps.filter(pl.col(c.SYMBOL).is_not_null()), wild.select(list(GAP_SCHEMA))])
        span = within.select(ts.min().alias("_lo"), (ts.max() + tfm.US_PER_DAY).alias("_hi"))
        gaps = gaps.join(span, how="cross")
        start = pl.max_horizontal(start, pl.col("_lo"))
        end = pl.min_horizontal(end.fill_null(pl.col("_hi")), pl.col("_hi"))
    width = window_width_us()
    return (
        gaps.join(wanted, how="cross")
        .filter(start <= end)
        .select(
            c.EXCHANGE, c.SYMBOL, c.TIMEFRAME,
            pl.int_ranges(start // width * width, end // width * width + width, width).alias(c.TIMESTAMP_IN),
        )
        .explode(c.TIMESTAMP_IN)
        .drop_nulls(c.TIMESTAMP_IN)
        .with_columns(pl.col(c.TIMESTAMP_IN).cast(TS))
        .unique()
    )


def mark_feed_gaps(candles: pl.LazyFrame, gaps: pl.LazyFrame, timeframes: str | Sequence[str]) -> pl.LazyFrame:
    """Set gap = 'feed' on candles of `timeframes` whose window overlaps any gap interval (see gap_windows)."""
    hit = gap_windows(gaps, timeframes, within=candles).with_columns(pl.lit(True).alias("_feed"))
    return (
        candles.join(hit, on=[c.EXCHANGE, c.SYMBOL, c.TIMEFRAME, c.TIMESTAMP_IN], how="left")
        .with_columns(
            pl.when(pl.col("_feed")).then(pl.lit(c.GAP_FEED)).otherwise(pl.col(c.GAP)).alias(c.GAP)
        )
        .drop("_feed")
    )
