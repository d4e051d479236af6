"""Rolling features of candle series, vectorised across all series, with an exact streaming continuation.

`add_features(candles)` computes every feature column of the data contract per (exchange, symbol,
timeframe) series ordered by timestamp_in. `add_features(new, prior=tail_state(previous_output))` resumes
a series from its carried state: recursive and cumulative quantities come from the `_st_` columns of the
last carried row and windows read the carried rows' raw columns, so the continuation gives the same values
as one run over all rows while the memory kept per series stays at TAIL_ROWS rows.
"""

from __future__ import annotations

import functools

import polars as pl

from ..contract import columns as c
from ..contract import timeframes as tfm
from ..contract.errors import FeatureStateError
from .features_exprs import (
    DAY,
    DEEPEST_LAG,
    LAST_PRIOR,
    MACD_LINE,
    NEW,
    POS,
    SECS,
    SEED_REACH,
    SID,
    SIGNAL_SEED_ROW,
    ST_DAY_QV,
    ST_DAY_V,
    ST_EMA,
    ST_N,
    STATE_COLUMNS,
    N,
    base_exprs,
    bollinger_pctb,
    centred_exprs,
    col,
    indicator_exprs,
    lag_exprs,
    micro_exprs,
    moment_exprs,
    price_exprs,
    recursive_exprs,
    signal_expr,
    volatility_exprs,
    volume_exprs,
)
from .plans import SMALL_PLAN

__all__ = ["STATE_COLUMNS", "TAIL_ROWS", "add_features", "tail_state", "advance_tail"]

# Rows per series a continuation needs: the deepest window lag, and the whole series until MACD is seeded
# (its seeds average raw rows from the series' start).
TAIL_ROWS: int = max(DEEPEST_LAG, SIGNAL_SEED_ROW) + 1

INPUT_COLUMNS = (
    c.EXCHANGE, c.SYMBOL, c.TIMEFRAME, c.TIMESTAMP_IN, c.HIGH, c.LOW, c.CLOSE, c.VOLUME, c.BASE_VOLUME,
    c.QUOTE_VOLUME, c.BUY_VOLUME, c.SELL_VOLUME, c.TRADES, c.VWAP,
)
STATE_DTYPES = {name: (pl.Int64() if name == ST_N else pl.Float64()) for name in STATE_COLUMNS}
US_PER_DAY = tfm.US_PER_DAY
_ORDER = [*c.SERIES_KEY, c.TIMESTAMP_IN]
_FIRST_NEW = "_ft_first_new"
_CARRIED = "_ft_carried"  # carried rows of the series in this frame


def _seconds_by_timeframe() -> dict[str, float]:
    """Window length in seconds of every timeframe name a candle row may carry (aliases included)."""
    names = {**{tf: tf for tf in tfm.SUPPORTED_TIMEFRAMES}, **tfm.ALIASES}
    return {name: tfm.duration_seconds(canonical) for name, canonical in names.items()}


def _require(schema: pl.Schema, needed: tuple[str, ...], what: str) -> None:
    """Raise FeatureStateError naming the columns of `needed` that `schema` lacks."""
    missing = [name for name in needed if name not in schema]
    if missing:
        raise FeatureStateError(f"{what} lacks column(s) {', '.join(missing)}")


def _combine(candles: pl.LazyFrame, prior: pl.LazyFrame | None) -> pl.LazyFrame:
    """New rows (flag NEW) plus, per series, the carried rows strictly before that series' first new row."""
    state_nulls = [pl.lit(None, dtype).alias(name) for name, dtype in STATE_DTYPES.items()]
    new = candles.with_columns(pl.lit(True).alias(NEW), *state_nulls)
    if prior is None:
        return new.sort(_ORDER)
    _require(prior.collect_schema(), INPUT_COLUMNS + STATE_COLUMNS, "prior (use tail_state of an add_features output)")
    first_new = candles.group_by(c.SERIES_KEY).agg(col(c.TIMESTAMP_IN).min().alias(_FIRST_NEW))
    carried = (
        prior.select(*INPUT_COLUMNS, *STATE_COLUMNS)
        .join(first_new, on=c.SERIES_KEY, how="inner")
        .filter(col(c.TIMESTAMP_IN) < col(_FIRST_NEW))
        .drop(_FIRST_NEW)
        .with_columns(pl.lit(False).alias(NEW), *(col(k).cast(t) for k, t in STATE_DTYPES.items()))
    )
    return pl.concat([new, carried], how="diagonal_relaxed").sort(_ORDER)


def _series_number() -> pl.Expr:
    """SID = 1 + number of series boundaries so far in the (series, timestamp_in) order."""
    starts = [col(k).ne_missing(col(k).shift(1)) for k in c.SERIES_KEY]
    return functools.reduce(lambda a, b: a | b, starts).cum_sum().alias(SID)


def _positions() -> list[pl.Expr]:
    """Row position within the series in this frame, its carried rows, last carried row flag, window seconds and
    UTC day."""
    return [
        pl.int_range(pl.len(), dtype=pl.Int64).over(SID).alias(POS),
        (~col(NEW)).sum().over(SID).cast(pl.Int64).alias(_CARRIED),
        (~col(NEW) & col(NEW).shift(-1).fill_null(False)).alias(LAST_PRIOR),
        col(c.TIMEFRAME).replace_strict(_seconds_by_timeframe(), return_dtype=pl.Float64).alias(SECS),
        (col(c.TIMESTAMP_IN).dt.epoch("us") // US_PER_DAY).alias(DAY),
    ]


def _day_totals() -> list[pl.Expr]:
    """Cumulative quote volume and base volume since UTC midnight, resumed from the last carried row's totals."""
    def running(state: str, source: str) -> pl.Expr:
        """sum of `source` over the series' rows of this UTC day so far (carried total + new rows)."""
        step = pl.when(col(LAST_PRIOR)).then(col(state)).when(~col(NEW)).then(0.0).otherwise(col(source))
        return step.cum_sum().over([SID, DAY]).alias(state)

    return [running(ST_DAY_QV, c.QUOTE_VOLUME), running(ST_DAY_V, c.BASE_VOLUME)]


def _vwap_day() -> pl.Expr:
    """vwap_day = cumulative quote volume / cumulative base volume since UTC midnight (a price for every
    instrument kind); null while the base volume is 0."""
    return pl.when(col(ST_DAY_V) > 0).then(col(ST_DAY_QV) / col(ST_DAY_V)).alias("vwap_day")


def _finite(name: str) -> pl.Expr:
    """The feature as Float64 with NaN and +-inf turned into null."""
    value = col(name).cast(pl.Float64)
    return pl.when(value.is_finite()).then(value).alias(name)


def add_features(candles: pl.LazyFrame, prior: pl.LazyFrame | pl.DataFrame | None = None) -> pl.LazyFrame:
    """The candle rows sorted by (series, timestamp_in) with every FEATURE_COLUMNS column and the STATE_COLUMNS."""
    candles = candles.lazy()
    schema = candles.collect_schema()
    _require(schema, INPUT_COLUMNS, "candles")
    if prior is not None:
        prior = prior.lazy()
    outputs = set(c.FEATURE_COLUMNS) | set(STATE_COLUMNS)
    keep = [name for name in schema.names() if name not in outputs]
    candles = candles.select(keep)
    frame = _combine(candles, prior)
    lagged, recursive, row_local = _stages()
    for stage in lagged:
        frame = frame.with_columns(stage)
    # Lags are columns now: a carried row is read again only by the recursions' seeds, SEED_REACH rows back.
    frame = frame.filter(col(NEW) | (col(POS) >= col(_CARRIED) - SEED_REACH))
    for stage in recursive:
        frame = frame.with_columns(stage)
    frame = frame.filter(col(NEW)).with_columns(col(N).alias(ST_N))
    for stage in row_local:
        frame = frame.with_columns(stage)
    return frame.select(*keep, *_outputs())


Stages = tuple[tuple[pl.Expr, ...], ...]


@functools.cache
def _stages() -> tuple[Stages, Stages, Stages]:
    """The with_columns steps of add_features: over every row (positions, lags), over the rows the recursions
    read, over the new rows alone (row-local windows of the lag columns). Built once: ~500 expressions cost ms."""
    lagged = (
        (_series_number(),),
        tuple(_positions()),
        ((col(POS) + col(ST_N).first().over(SID).fill_null(0)).alias(N),),
        tuple(base_exprs()),
        tuple(lag_exprs()),
    )
    recursive = (
        (*recursive_exprs(), *_day_totals()),
        ((col(ST_EMA[12]) - col(ST_EMA[26])).alias(MACD_LINE),),
        (signal_expr(),),
    )
    row_local = (
        tuple(centred_exprs()),
        tuple(moment_exprs()),
        (
            *price_exprs(), *volume_exprs(), *volatility_exprs(), *micro_exprs(), bollinger_pctb(),
            *indicator_exprs(), _vwap_day(),
        ),
    )
    return lagged, recursive, row_local


@functools.cache
def _outputs() -> tuple[pl.Expr, ...]:
    """The feature columns (NaN and +-inf as null) and the state columns, in contract order."""
    return (*(_finite(name) for name in c.FEATURE_COLUMNS), *(col(name) for name in STATE_COLUMNS))


def tail_state(featured: pl.LazyFrame | pl.DataFrame, n: int = TAIL_ROWS) -> pl.DataFrame:
    """The last `n` rows per series of an add_features output (with its STATE_COLUMNS): the carry of a stream."""
    frame = featured.lazy()
    _require(frame.collect_schema(), INPUT_COLUMNS + STATE_COLUMNS, "featured frame (keep STATE_COLUMNS)")
    # pl.len() is unsigned: cast before subtracting, or a short series underflows and keeps nothing.
    in_tail = pl.int_range(pl.len()).over(c.SERIES_KEY) >= pl.len().over(c.SERIES_KEY).cast(pl.Int64) - n
    return frame.sort(_ORDER).filter(in_tail).collect(engine="in-memory", optimizations=SMALL_PLAN)


def advance_tail(
    tail: pl.DataFrame | None, featured: pl.LazyFrame | pl.DataFrame, n: int = TAIL_ROWS, *, overlap: bool = True
) -> pl.DataFrame:
    """The carry after a step: tail_state of (previous tail + new add_features output), newest row per window.
    `overlap=False` says no new row is a window the tail holds (all lie past it): no per-window dedupe then."""
    fresh = featured.collect(engine="in-memory") if isinstance(featured, pl.LazyFrame) else featured
    if tail is None or tail.height == 0:
        return tail_state(fresh, n)
    both = pl.concat([tail, fresh.select(tail.columns)], how="vertical_relaxed")
    if overlap:
        return tail_state(both.unique(subset=_ORDER, keep="last", maintain_order=True), n)
    # Each part is in time order per series and the new rows lie past the tail's: a series' last n rows in frame
    # order are its newest, with no sort.
    return both.group_by(c.SERIES_KEY, maintain_order=True).tail(n)
