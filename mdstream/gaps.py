"""Known-missing data: intervals of event time during which a feed was down, and the windows they touch."""

from __future__ import annotations

import polars as pl

from . import columns as c
from . import timeframes as tfm
from .schema import TS

GAP_START = "gap_start"
GAP_END = "gap_end"
GAP_REASON = "gap_reason"
GAP_SCHEMA = {c.EXCHANGE: pl.String(), c.SYMBOL: pl.String(), GAP_START: TS, GAP_END: TS, GAP_REASON: pl.String()}

# Exchanges whose trade ids are consecutive per symbol, so a jump in ids proves missing trades.
CONSECUTIVE_ID_PREFIXES = ("binance",)


def empty_gaps() -> pl.LazyFrame:
    """A gap frame with no rows."""
    return pl.LazyFrame(schema=GAP_SCHEMA)


def id_jump_gaps(ticks: pl.LazyFrame) -> pl.LazyFrame:
    """Intervals (previous trade time, next trade time) where consecutive-id exchanges skip ids (diff > 1)."""
    numeric = pl.col(c.ID).cast(pl.Int64, strict=False)
    consecutive = pl.any_horizontal(*[pl.col(c.EXCHANGE).str.starts_with(p) for p in CONSECUTIVE_ID_PREFIXES])
    series = [c.EXCHANGE, c.SYMBOL]
    return (
        ticks.filter(consecutive)
        .select(c.EXCHANGE, c.SYMBOL, c.TIMESTAMP, numeric.alias("_n"))
        .drop_nulls("_n")
        .sort([*series, "_n"])
        .with_columns(
            pl.col("_n").shift(1).over(series).alias("_prev_n"),
            pl.col(c.TIMESTAMP).shift(1).over(series).alias(GAP_START),
        )
        .filter(pl.col("_n") - pl.col("_prev_n") > 1)
        .select(
            c.EXCHANGE,
            c.SYMBOL,
            pl.min_horizontal(GAP_START, c.TIMESTAMP).alias(GAP_START),
            pl.max_horizontal(GAP_START, c.TIMESTAMP).alias(GAP_END),
            pl.format("trade id jump {}->{}", pl.col("_prev_n"), pl.col("_n")).alias(GAP_REASON),
        )
    )


def gap_windows(gaps: pl.LazyFrame, timeframe: str) -> pl.LazyFrame:
    """(exchange, symbol, timestamp_in) of every `timeframe` window overlapping a gap [start, end]."""
    width = tfm.duration_us(timeframe)

    def floor(col: str) -> pl.Expr:
        return ((pl.col(col).dt.epoch("us") // width) * width).cast(TS)

    return (
        gaps.select(
            c.EXCHANGE,
            c.SYMBOL,
            pl.datetime_ranges(floor(GAP_START), floor(GAP_END), interval=f"{width}us", time_unit="us", time_zone="UTC")
            .alias(c.TIMESTAMP_IN),
        )
        .explode(c.TIMESTAMP_IN)
        .drop_nulls(c.TIMESTAMP_IN)
        .unique()
    )


def mark_feed_gaps(candles: pl.LazyFrame, gaps: pl.LazyFrame, timeframe: str) -> pl.LazyFrame:
    """Set gap = 'feed' on `timeframe` candles whose window overlaps any gap interval."""
    hit = gap_windows(gaps, timeframe).with_columns(pl.lit(True).alias("_feed"))
    return (
        candles.join(hit, on=[c.EXCHANGE, c.SYMBOL, c.TIMESTAMP_IN], how="left")
        .with_columns(
            pl.when(pl.col("_feed")).then(pl.lit(c.GAP_FEED)).otherwise(pl.col(c.GAP)).alias(c.GAP)
        )
        .drop("_feed")
    )
