"""Sparse candles -> the dense UTC grid of a timeframe, and the final contract columns (pure Polars)."""

from __future__ import annotations

import functools
from datetime import datetime

import polars as pl

from ..contract import columns as c
from ..contract import timeframes as tfm
from ..contract.schema import CANDLE_BASE_SCHEMA, TS

SPARSE_COLUMNS = (
    c.EXCHANGE, c.SYMBOL, c.TIMEFRAME, c.TIMESTAMP_IN, c.OPEN, c.HIGH, c.LOW, c.CLOSE, c.VOLUME, c.BASE_VOLUME,
    c.QUOTE_VOLUME, c.BUY_VOLUME, c.SELL_VOLUME, c.TRADES, c.FIRST_TRADE_AT, c.LAST_TRADE_AT,
)
# An empty window carries the previous close in its prices and zero in its volumes.
PRICE_COLUMNS = (c.OPEN, c.HIGH, c.LOW, c.CLOSE)
VOLUME_COLUMNS = (c.VOLUME, c.BASE_VOLUME, c.QUOTE_VOLUME, c.BUY_VOLUME, c.SELL_VOLUME)


def window_start(ts: pl.Expr, timeframe: str) -> pl.Expr:
    """floor(ts / timeframe) * timeframe, on epoch microseconds: the UTC-aligned window a time falls in."""
    width = tfm.duration_us(timeframe)
    return ((ts.dt.epoch("us") // width) * width).cast(TS)


def densify(
    sparse: pl.LazyFrame,
    timeframe: str | None = None,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    prior_close: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Dense grid per series up to `end` (exclusive; default: the last trade window, inclusive). A new series
    starts at its first trade window (not before `start`); a series continuing from `prior_close`
    (exchange, symbol[, timeframe], close[, next_start]) starts at its own `next_start` when given, else at
    `start`, and carries that close into its leading empty windows. Empty windows get trades 0, volumes 0,
    open = high = low = close = previous close, gap = quiet. A series is (exchange, symbol, timeframe): with
    `timeframe` None every timeframe the rows carry is filled in one pass."""
    key = [c.EXCHANGE, c.SYMBOL, c.TIMEFRAME]
    if timeframe is not None:
        name = pl.lit(tfm.normalize(timeframe)).alias(c.TIMEFRAME)
        sparse = sparse.with_columns(name)
        prior_close = prior_close.with_columns(name) if prior_close is not None else None
    ts_us = pl.col(c.TIMESTAMP_IN).dt.epoch("us")
    bounds = sparse.group_by(key).agg(ts_us.min().alias("_lo"), ts_us.max().alias("_hi"))
    if prior_close is not None:
        has_next = "next_start" in prior_close.collect_schema().names()
        next_start = pl.col("next_start").dt.epoch("us") if has_next else pl.lit(None, pl.Int64)
        prior = prior_close.select(*key, pl.col(c.CLOSE).alias("_prior"), next_start.alias("_next"))
        bounds = bounds.join(prior, on=key, how="full", coalesce=True)
        bounds = bounds.with_columns(pl.coalesce("_next", "_lo").alias("_lo"))
    else:
        bounds = bounds.with_columns(pl.lit(None, pl.Float64).alias("_prior"), pl.lit(None, pl.Int64).alias("_next"))
    width = window_width_us()
    if start is not None:
        lo = _epoch_us(start) // width * width
        bounds = bounds.with_columns(
            pl.when(pl.col("_next").is_not_null()).then(pl.col("_lo"))
            .when(pl.col("_prior").is_not_null()).then(lo)
            .otherwise(pl.max_horizontal(pl.col("_lo"), lo)).alias("_lo")
        )
    if end is not None:
        # `end` is exclusive: the last window is the one that starts before it.
        bounds = bounds.with_columns(((_epoch_us(end) - 1) // width * width).alias("_hi"))
    return fill_grid(sparse, bounds.select(*key, "_lo", "_hi", "_prior"))


def fill_grid(sparse: pl.LazyFrame, bounds: pl.LazyFrame) -> pl.LazyFrame:
    """Dense rows of every segment in `bounds` (exchange, symbol, timeframe, _lo, _hi: first and last window start
    in epoch us, inclusive; _prior: close carried into leading empty windows). A series may have several
    segments (the windows between them are not built); `sparse` rows outside every segment are dropped. Empty
    windows get trades 0, volumes 0, open = high = low = close = previous close, gap = quiet."""
    key = [c.EXCHANGE, c.SYMBOL, c.TIMEFRAME]
    width = window_width_us()
    grid = (
        bounds.filter(pl.col("_hi") >= pl.col("_lo"))
        .with_columns(pl.int_ranges("_lo", pl.col("_hi") + width, width).alias(c.TIMESTAMP_IN))
        .explode(c.TIMESTAMP_IN)
        .select(*key, pl.col(c.TIMESTAMP_IN).cast(TS), "_prior")
    )
    # forward_fill().over(series) keeps row order within each series: sorting by time is enough.
    dense = grid.join(sparse, on=[*key, c.TIMESTAMP_IN], how="left").sort(c.TIMESTAMP_IN, maintain_order=True)
    carried = pl.coalesce(pl.col(c.CLOSE).forward_fill().over(key), pl.col("_prior"))
    empty = pl.col(c.TRADES).is_null()
    zero = pl.when(empty).then(0.0)
    return dense.with_columns(carried.alias("_carried")).with_columns(
        *[pl.when(empty).then(pl.col("_carried")).otherwise(pl.col(k)).alias(k) for k in PRICE_COLUMNS],
        *[zero.otherwise(pl.col(k)).alias(k) for k in VOLUME_COLUMNS],
        pl.col(c.TRADES).fill_null(0),
        vwap(),
        pl.when(empty).then(pl.lit(c.GAP_QUIET)).otherwise(pl.lit(None, pl.String)).alias(c.GAP),
    ).select(*SPARSE_COLUMNS, c.VWAP, c.GAP)


def vwap() -> pl.Expr:
    """vwap = quote_volume / base_volume (a price for every instrument kind); null for an empty window, whose
    sums are null before densify fills them (and 0 / 0 after)."""
    return pl.when(pl.col(c.BASE_VOLUME) > 0).then(pl.col(c.QUOTE_VOLUME) / pl.col(c.BASE_VOLUME)).alias(c.VWAP)


def _epoch_us(when: datetime) -> pl.Expr:
    """`when` as a literal of epoch microseconds."""
    return pl.lit(tfm.epoch_us(when), pl.Int64)


@functools.cache
def window_width_us() -> pl.Expr:
    """Window length in microseconds of the row's timeframe (built once)."""
    return pl.col(c.TIMEFRAME).replace_strict(tfm.TIMEFRAME_US, return_dtype=pl.Int64)


def finalize(
    dense: pl.LazyFrame, *, now: datetime, revision: pl.Expr | int = 0, late_trades: pl.Expr | int = 0
) -> pl.LazyFrame:
    """Add timestamp_out = now, latency_ms = now - window end (ms), revision and late_trades (constants or
    expressions over `dense`); the contract's columns in order."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    as_expr = lambda v: v if isinstance(v, pl.Expr) else pl.lit(v, pl.Int64)  # noqa: E731
    return dense.with_columns(
        pl.lit(now).cast(TS).alias(c.TIMESTAMP_OUT),
        ((_epoch_us(now) - _window_end_us()) / 1000.0).alias(c.LATENCY_MS),
        as_expr(revision).alias(c.REVISION),
        as_expr(late_trades).alias(c.LATE_TRADES),
    ).select(_base_casts())


@functools.cache
def _window_end_us() -> pl.Expr:
    """timestamp_in + the row's timeframe length, in epoch microseconds (built once)."""
    return pl.col(c.TIMESTAMP_IN).dt.epoch("us") + window_width_us()


@functools.cache
def _base_casts() -> tuple[pl.Expr, ...]:
    """Every base contract column cast to its contract type, in order (built once)."""
    return tuple(pl.col(name).cast(dtype) for name, dtype in CANDLE_BASE_SCHEMA.items())


def stamp(candles: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """Finished rows stamped as emitted at `now`: timestamp_out = now, latency_ms = now - window end (ms)."""
    if candles.height == 0:
        return candles
    return candles.with_columns(
        pl.lit(now).cast(TS).alias(c.TIMESTAMP_OUT),
        ((_epoch_us(now) - _window_end_us()) / 1000.0).alias(c.LATENCY_MS),
    )
