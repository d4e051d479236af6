"""Ticks -> dense, UTC-aligned candles for every timeframe (pure Polars, no I/O, no clock reads)."""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from datetime import datetime

import polars as pl

from ..contract import columns as c
from ..contract import timeframes as tfm
from ..contract.instruments import INVERSE
from ..contract.schema import CANDLE_BASE_SCHEMA, TS
from .grid import SPARSE_COLUMNS, densify, finalize, window_start
from .order import ID_NUMBER, ORDER_KEYS, id_length, in_trade_order, order_ticks
from .plans import SMALL_PLAN
from .unordered import BUCKET, unordered_windows
from .volumes import apply_many, apply_one, has_inverse, inverse_agg, inverse_input, series_rule

# The columns the window aggregation reads (window_inputs, window_aggs): all order_ticks needs to move for it.
WINDOW_INPUTS = (c.EXCHANGE, c.SYMBOL, c.TIMESTAMP, c.SIDE, c.PRICE, c.AMOUNT)
_BUCKET = BUCKET
_FILTER_SPLIT = 8  # up to this many series in one file, split_series filters once per series
_BUY = "_buy_amount"
_SELL = "_sell_amount"


def _constant(ticks: pl.DataFrame) -> tuple[bool, bool]:
    """(every row has the first row's exchange, every row has the first row's symbol)."""
    return ticks.select(*((pl.col(k) == pl.col(k).first()).all() for k in (c.EXCHANGE, c.SYMBOL))).row(0)


def is_single_series(ticks: pl.DataFrame) -> bool:
    """True when every row has the first row's exchange and symbol."""
    return all(_constant(ticks))


def split_series(ticks: pl.DataFrame) -> list[pl.DataFrame]:
    """One frame per (exchange, symbol); a single-series frame (a Tardis day file) is returned as is."""
    if ticks.height == 0:
        return []
    one_exchange, one_symbol = _constant(ticks)
    if one_exchange and one_symbol:
        return [ticks]
    # Exchange and symbol, one value in each part, are set once rather than gathered row by row (a third fewer
    # bytes moved on millions of rows); one venue in the file (the usual case) is split on the symbol alone.
    keys = [c.SYMBOL] if one_exchange else [c.EXCHANGE, c.SYMBOL]
    first = ticks[c.EXCHANGE][0]
    rest = ticks.drop(c.EXCHANGE) if one_exchange else ticks
    series = (ticks[c.SYMBOL].unique(maintain_order=True).to_frame() if one_exchange
              else ticks.select(keys).unique(maintain_order=True))
    if series.height <= _FILTER_SPLIT:
        # A few series: one filter pass each beats partition_by's gathers over the many chunks a file is read in
        # (4 symbols, 3M rows: 0.15 -> 0.12 s); same parts, same order (first appearance), rows in file order.
        body = rest.drop(keys)  # the key columns are set again below: not moved through the filters
        parts = {key: body.filter(functools.reduce(operator.and_, (ticks[k] == v for k, v in zip(keys, key))))
                 for key in series.iter_rows()}
    else:
        parts = rest.partition_by(keys, maintain_order=True, include_key=False, as_dict=True)
    return [
        part.with_columns(pl.lit(first if one_exchange else key[0], ticks.schema[c.EXCHANGE]).alias(c.EXCHANGE),
                          pl.lit(key[-1], ticks.schema[c.SYMBOL]).alias(c.SYMBOL))[ticks.columns]
        for key, part in parts.items()
    ]


def split_numbered(ticks: pl.DataFrame, numbers: pl.Series | None, *, single: bool = False) -> list[pl.DataFrame]:
    """split_series of `ticks` (`single`: known to be one series, not split), each part with its ids as Int64 in
    ID_NUMBER when `numbers` (the ids a reader parsed) is given: integer ids are their own numbers, aliased after
    the split so no second column moves through it; text ids' numbers are added before it."""
    own = ticks[c.ID].dtype == pl.Int64
    if numbers is not None and not own:
        ticks = ticks.with_columns(numbers.alias(ID_NUMBER))
    parts = [ticks] if single and ticks.height else split_series(ticks)
    if numbers is not None and own:
        parts = [part.with_columns(pl.col(c.ID).alias(ID_NUMBER)) for part in parts]
    return parts


def window_inputs(inverse: bool = False) -> list[pl.Expr]:
    """Per-tick columns the window aggregation sums: amount if the aggressor bought (sold), else 0; with
    `inverse`, also amount / price (volumes.INVERSE_SUM)."""
    amount = pl.col(c.AMOUNT)
    # Validated sides are buy/sell/unknown, told apart by length: an integer test instead of string compares;
    # summing precomputed columns is ~3x cheaper than filtering inside every group.
    side = pl.col(c.SIDE).str.len_bytes()
    return [
        pl.when(side == len(c.SIDE_BUY)).then(amount).otherwise(0.0).alias(_BUY),
        pl.when(side == len(c.SIDE_SELL)).then(amount).otherwise(0.0).alias(_SELL),
        *([inverse_input()] if inverse else []),
    ]


def window_aggs(inverse: bool = False) -> list[pl.Expr]:
    """OHLC (first/max/min/last price in trade order), volume = sum amount, quote_volume = sum price*amount (raw,
    before volumes.apply_*), with `inverse` sum amount/price, buy/sell volume by aggressor side, trades = count,
    first/last trade time (rows are in trade order)."""
    price = pl.col(c.PRICE)
    return [
        price.first().alias(c.OPEN),
        price.max().alias(c.HIGH),
        price.min().alias(c.LOW),
        price.last().alias(c.CLOSE),
        *window_sums(inverse),
        pl.len().cast(pl.Int64).alias(c.TRADES),
        pl.col(c.TIMESTAMP).first().alias(c.FIRST_TRADE_AT),
        pl.col(c.TIMESTAMP).last().alias(c.LAST_TRADE_AT),
    ]


def window_sums(inverse: bool = False) -> list[pl.Expr]:
    """The window sums: volume = sum amount, quote_volume = sum price*amount (raw), buy/sell volume = sum of the
    side's amounts, with `inverse` sum amount/price (window_inputs makes the per-trade columns they read)."""
    amount, price = pl.col(c.AMOUNT), pl.col(c.PRICE)
    return [
        amount.sum().alias(c.VOLUME),
        (price * amount).sum().alias(c.QUOTE_VOLUME),
        pl.col(_BUY).sum().alias(c.BUY_VOLUME),
        pl.col(_SELL).sum().alias(c.SELL_VOLUME),
        *([inverse_agg()] if inverse else []),
    ]


def sparse_many(ticks: pl.DataFrame, timeframe: str, instruments: pl.DataFrame | None = None) -> pl.DataFrame:
    """Windows with at least one trade for ticks of many series at once (one sort, one group_by): the stream's
    batches hold every symbol of a feed, and a Python loop per symbol would dominate. Volumes follow each
    series' instrument in `instruments` (contract/instruments.INSTRUMENT_SCHEMA; unlisted: linear, size 1)."""
    width = tfm.duration_us(timeframe)
    inverse = has_inverse(instruments)
    windows = (
        ticks.lazy()
        .with_columns(id_length())
        # first()/last() follow row order inside each group, so a sort on the (numeric) trade order is
        # enough; sorting by the symbol strings too would cost ten times more.
        .sort(list(ORDER_KEYS), nulls_last=False, maintain_order=True)
        .with_columns((pl.col(c.TIMESTAMP).dt.epoch("us") // width * width).alias(_BUCKET), *window_inputs(inverse))
        .group_by([c.EXCHANGE, c.SYMBOL, _BUCKET], maintain_order=True)
        .agg(window_aggs(inverse))
        .with_columns(pl.col(_BUCKET).cast(TS).alias(c.TIMESTAMP_IN), pl.lit(timeframe).alias(c.TIMEFRAME))
    )
    return apply_many(windows, instruments, inverse=inverse).select(SPARSE_COLUMNS).collect(engine="in-memory",
                                                                                           optimizations=SMALL_PLAN)


def series_windows(series: pl.DataFrame, timeframe: str, instruments: pl.DataFrame | None = None) -> pl.DataFrame:
    """Windows with at least one trade of ONE series in any row order (sparse_from_ticks' rows): rows already in
    trade order are aggregated as they are; others without moving them (kernel/unordered.py), unless an exchange
    time is missing (then sorted, nulls first, by order_ticks)."""
    if series.get_column(c.TIMESTAMP).flags["SORTED_ASC"]:
        # A flagged exchange time sends the window sums down a path 3-5x slower whose sums vary in the last bit
        # from run to run (see sparse_from_ticks): the windows read an unflagged copy (~1 ms per 1M trades).
        series = series.with_columns((pl.col(c.TIMESTAMP).dt.epoch("us") + 0).cast(TS).alias(c.TIMESTAMP))
    if in_trade_order(series):
        return sparse_from_ticks(series, timeframe, instruments)
    if series.get_column(c.TIMESTAMP).null_count():
        return sparse_from_ticks(order_ticks(series, WINDOW_INPUTS), timeframe, instruments)
    kind, size = series_rule(instruments, series[c.EXCHANGE][0], series[c.SYMBOL][0])
    inverse = kind == INVERSE
    windows = unordered_windows(series, tfm.duration_us(timeframe), window_inputs(inverse), window_sums(inverse))
    return _finish_one(windows, series, timeframe, kind, size)


def sparse_from_ticks(ordered: pl.DataFrame, timeframe: str, instruments: pl.DataFrame | None = None) -> pl.DataFrame:
    """Windows with at least one trade, for ONE series already in trade order (order_ticks); volumes follow the
    series' instrument in `instruments` (unlisted: linear, size 1). The exchange time must not be flagged sorted
    (order_ticks leaves it unflagged): Polars then sums windows down a path 3x slower whose order of partial sums
    varies from run to run; the bucket alone is flagged."""
    width = tfm.duration_us(timeframe)
    # The bucket is sorted because the ticks are: flagging it lets Polars group by runs, ~2.5x faster.
    bucket = (pl.col(c.TIMESTAMP).dt.epoch("us") // width * width).set_sorted()
    kind, size = series_rule(instruments, ordered[c.EXCHANGE][0], ordered[c.SYMBOL][0])
    inverse = kind == INVERSE
    windows = (
        ordered.lazy()
        .with_columns(bucket.alias(_BUCKET), *window_inputs(inverse))
        .group_by(_BUCKET, maintain_order=True)
        .agg(window_aggs(inverse))
    )
    return _finish_one(windows, ordered, timeframe, kind, size)


def _finish_one(windows: pl.LazyFrame, series: pl.DataFrame, timeframe: str, kind: str, size: float) -> pl.DataFrame:
    """Sparse rows (SPARSE_COLUMNS) of one series' window aggregates (_bucket, raw sums): volumes by its rule."""
    # One series: exchange and symbol are constants, cheaper added after than gathered per window.
    exchange, symbol = series[c.EXCHANGE][0], series[c.SYMBOL][0]
    return (
        apply_one(windows, kind, size)
        .with_columns(
            pl.lit(exchange, pl.String).alias(c.EXCHANGE), pl.lit(symbol, pl.String).alias(c.SYMBOL),
            pl.col(_BUCKET).cast(TS).alias(c.TIMESTAMP_IN), pl.lit(timeframe).alias(c.TIMEFRAME),
        )
        .select(SPARSE_COLUMNS)
        .collect()
    )


def rollup(sparse: pl.LazyFrame, timeframe: str) -> pl.LazyFrame:
    """Sparse candles of a finer timeframe -> sparse candles of `timeframe` (a multiple of it); exact."""
    return (
        # Time order is all first()/last() need inside each group; no string sort.
        sparse.sort(c.TIMESTAMP_IN, maintain_order=True)
        .with_columns(window_start(pl.col(c.TIMESTAMP_IN), timeframe).alias(_BUCKET))
        .group_by([c.EXCHANGE, c.SYMBOL, _BUCKET], maintain_order=True)
        .agg(
            pl.col(c.OPEN).first(),
            pl.col(c.HIGH).max(),
            pl.col(c.LOW).min(),
            pl.col(c.CLOSE).last(),
            pl.col(c.VOLUME).sum(),
            pl.col(c.BASE_VOLUME).sum(),
            pl.col(c.QUOTE_VOLUME).sum(),
            pl.col(c.BUY_VOLUME).sum(),
            pl.col(c.SELL_VOLUME).sum(),
            pl.col(c.TRADES).sum(),
            pl.col(c.FIRST_TRADE_AT).min(),
            pl.col(c.LAST_TRADE_AT).max(),
        )
        .rename({_BUCKET: c.TIMESTAMP_IN})
        .with_columns(pl.lit(timeframe).alias(c.TIMEFRAME))
        .select(SPARSE_COLUMNS)
    )


def sparse_all(
    ticks: pl.DataFrame | list[pl.DataFrame], timeframes: Sequence[str], instruments: pl.DataFrame | None = None
) -> dict[str, pl.LazyFrame]:
    """Sparse candles per timeframe for every series (`ticks` may come already split by split_series): the
    shortest from ticks, each longer one rolled up from the previous (exact, ~10x cheaper than re-reading ticks);
    volumes by each series' instrument in `instruments`."""
    wanted = sorted({tfm.normalize(t) for t in timeframes}, key=tfm.duration_us)
    base = wanted[0]
    if isinstance(ticks, list):  # big series, already split: each takes the single-series fast path
        parts = [series_windows(part, base, instruments) for part in ticks if part.height]
        sparse = pl.concat(parts) if parts else None
    elif ticks.height == 0:
        sparse = None
    elif is_single_series(ticks):
        sparse = series_windows(ticks, base, instruments)
    else:  # many small series (a stream batch): one vectorised pass
        sparse = sparse_many(ticks, base, instruments)
    if sparse is None:
        sparse = pl.DataFrame(schema={k: CANDLE_BASE_SCHEMA[k] for k in SPARSE_COLUMNS})
    # Every timeframe is a multiple of the base one, so each rolls up from it directly: one collect of
    # small frames (the in-memory engine: ~4x less overhead than streaming on a few thousand rows).
    rolled = pl.collect_all([rollup(sparse.lazy(), tf) for tf in wanted[1:]], engine="in-memory")
    return {base: sparse.lazy(), **{tf: frame.lazy() for tf, frame in zip(wanted[1:], rolled)}}


def candles_from_ticks(
    ticks: pl.LazyFrame | pl.DataFrame | list[pl.DataFrame],
    timeframes: Sequence[str] = tfm.ALL_TIMEFRAMES,
    *,
    now: datetime,
    start: datetime | None = None,
    end: datetime | None = None,
    feed_gaps: pl.LazyFrame | None = None,
    prior_close: pl.DataFrame | None = None,
    instruments: pl.DataFrame | None = None,
) -> pl.LazyFrame:
    """Dense candles (base contract columns) of every requested timeframe from ticks of any series.
    `start`/`end` bound the grid (end exclusive); `feed_gaps` (gaps.GAP_SCHEMA) marks gap = feed;
    `prior_close` (exchange, symbol, timeframe, close) continues series from an earlier day; `instruments`
    (contract/instruments.INSTRUMENT_SCHEMA) gives each series' kind and contract size (unlisted: linear, 1)."""
    from .gaps import mark_feed_gaps

    frame = ticks.collect() if isinstance(ticks, pl.LazyFrame) else ticks
    if feed_gaps is not None:
        # Usually there are none: the joins that mark them then cost a third of the grid's time.
        known = feed_gaps.lazy().collect(engine="in-memory")
        feed_gaps = known.lazy() if known.height else None
    # `frame` may be a list of single-series frames (split_series), to skip a second split.
    sparse = sparse_all(frame, timeframes, instruments)
    closes = None
    if prior_close is not None:
        closes = prior_close.lazy().filter(pl.col(c.TIMEFRAME).is_in(list(sparse))).select(
            c.EXCHANGE, c.SYMBOL, c.TIMEFRAME, c.CLOSE
        )
    # Every timeframe in one grid pass: a series is (exchange, symbol, timeframe).
    dense = densify(pl.concat(list(sparse.values())), start=start, end=end, prior_close=closes)
    if feed_gaps is not None:
        dense = mark_feed_gaps(dense, feed_gaps, list(sparse))
    return finalize(dense, now=now)
