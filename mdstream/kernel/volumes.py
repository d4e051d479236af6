"""The volume rule of each instrument kind (contract/instruments.py) applied to window sums (pure Polars).

A window pass sums, per trade, amount (-> volume), price * amount (-> quote_volume as a raw sum) and, only when
a series is inverse, amount / price (INVERSE_SUM). The rule then scales those sums by the contract size s:
    spot, linear, quanto: base_volume = s * sum(amount),        quote_volume = s * sum(price * amount)
    inverse:              base_volume = s * sum(amount / price), quote_volume = s * sum(amount)
Scaling the window sum instead of every trade keeps one pass and costs nothing per tick; s = 1 (spot, USD-M)
multiplies exactly, so those candles are bit-for-bit what a plain sum gives.
"""

from __future__ import annotations

import polars as pl

from ..contract import columns as c
from ..contract.instruments import CONTRACT_SIZE, INVERSE, KIND, LINEAR

INVERSE_SUM = "_amount_per_price"
_SIZE, _INVERSE = "_contract_size", "_is_inverse"


def series_rule(instruments: pl.DataFrame | None, exchange: str, symbol: str) -> tuple[str, float]:
    """(kind, contract_size) of one series; (linear, 1.0) when `instruments` does not list it."""
    if instruments is None or instruments.height == 0:
        return LINEAR, 1.0
    row = instruments.filter((pl.col(c.EXCHANGE) == exchange) & (pl.col(c.SYMBOL) == symbol))
    if row.height == 0:
        return LINEAR, 1.0
    return row[KIND][-1], float(row[CONTRACT_SIZE][-1])


def has_inverse(instruments: pl.DataFrame | None) -> bool:
    """Whether any listed instrument is inverse (only then do windows sum amount / price)."""
    return instruments is not None and instruments.height > 0 and bool((instruments[KIND] == INVERSE).any())


def inverse_input() -> pl.Expr:
    """Per trade: amount / price, the base-asset amount of one inverse unit of size 1."""
    return (pl.col(c.AMOUNT) / pl.col(c.PRICE)).alias(INVERSE_SUM)


def inverse_agg() -> pl.Expr:
    """Per window: sum(amount / price)."""
    return pl.col(INVERSE_SUM).sum()


def apply_one(windows: pl.LazyFrame, kind: str, size: float) -> pl.LazyFrame:
    """base_volume and quote_volume of ONE series' windows from its raw sums (module docstring); drops INVERSE_SUM."""
    volume, raw_quote = pl.col(c.VOLUME), pl.col(c.QUOTE_VOLUME)
    if kind == INVERSE:
        exprs = [(pl.col(INVERSE_SUM) * size).alias(c.BASE_VOLUME), (volume * size).alias(c.QUOTE_VOLUME)]
    elif size == 1.0:
        exprs = [volume.alias(c.BASE_VOLUME)]
    else:
        exprs = [(volume * size).alias(c.BASE_VOLUME), (raw_quote * size).alias(c.QUOTE_VOLUME)]
    return windows.with_columns(exprs).drop(INVERSE_SUM, strict=False)


def apply_many(windows: pl.LazyFrame, instruments: pl.DataFrame | None, *, inverse: bool) -> pl.LazyFrame:
    """base_volume and quote_volume of windows of many series, each by its own instrument (unlisted: linear,
    size 1); `inverse` says whether the windows carry INVERSE_SUM."""
    if instruments is None or instruments.height == 0:
        return windows.with_columns(pl.col(c.VOLUME).alias(c.BASE_VOLUME))
    rules = instruments.lazy().select(
        c.EXCHANGE, c.SYMBOL, pl.col(CONTRACT_SIZE).alias(_SIZE), (pl.col(KIND) == INVERSE).alias(_INVERSE)
    ).unique([c.EXCHANGE, c.SYMBOL], keep="last")
    joined = windows.join(rules, on=[c.EXCHANGE, c.SYMBOL], how="left", maintain_order="left")
    size, volume, raw_quote = pl.col(_SIZE).fill_null(1.0), pl.col(c.VOLUME), pl.col(c.QUOTE_VOLUME)
    if inverse:
        is_inverse = pl.col(_INVERSE).fill_null(False)
        base = pl.when(is_inverse).then(pl.col(INVERSE_SUM) * size).otherwise(volume * size)
        quote = pl.when(is_inverse).then(volume * size).otherwise(raw_quote * size)
    else:
        base, quote = volume * size, raw_quote * size
    return joined.with_columns(base.alias(c.BASE_VOLUME), quote.alias(c.QUOTE_VOLUME)).drop(
        _SIZE, _INVERSE, INVERSE_SUM, strict=False
    )
