"""Candle builders for the feature tests: random-walk series that keep the data contract's candle rules."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import polars as pl

from mdstream.contract import columns as c
from mdstream.contract import timeframes as tfm
from mdstream.contract.schema import TS

START = datetime(2024, 3, 1, 22, 0, tzinfo=timezone.utc)


def random_candles(
    rng: np.random.Generator,
    n: int,
    *,
    symbol: str = "BTCUSDT",
    timeframe: str = "1m",
    exchange: str = "binance",
    start: datetime = START,
    empty_share: float = 0.1,
    flat: tuple[int, int] | None = None,
    price: float = 100.0,
) -> pl.DataFrame:
    """n dense candles of one series: a 0.01-tick random walk; empty windows (and rows flat[0]..flat[1]) carry the close."""
    empty = rng.random(n) < empty_share
    if flat is not None:
        empty[flat[0] : flat[1]] = True
    empty[:1] = False
    steps = np.round(rng.normal(0.0, 0.6, n), 2)
    steps[empty] = 0.0
    close = np.maximum(price + np.cumsum(steps), 1.0)
    prev = np.concatenate([[close[0]], close[:-1]])
    wick_up = np.round(rng.random(n) * 0.5, 2)
    wick_down = np.round(rng.random(n) * 0.5, 2)
    high = np.where(empty, close, np.maximum(prev, close) + wick_up)
    low = np.where(empty, close, np.maximum(np.minimum(prev, close) - wick_down, 0.5))
    volume = np.where(empty, 0.0, np.round(rng.random(n) * 20 + 0.001, 3))
    buy = np.round(volume * rng.random(n), 3)
    trades = np.where(empty, 0, rng.integers(1, 50, n))
    vwap = np.where(empty, np.nan, (low + high) / 2)
    start_us = int(start.timestamp() * 1_000_000)
    return pl.DataFrame(
        {
            c.EXCHANGE: exchange,
            c.SYMBOL: symbol,
            c.TIMEFRAME: timeframe,
            c.TIMESTAMP_IN: pl.Series(start_us + np.arange(n, dtype=np.int64) * tfm.duration_us(timeframe)).cast(TS),
            c.OPEN: prev,
            c.HIGH: high,
            c.LOW: low,
            c.CLOSE: close,
            c.VOLUME: volume,
            c.BASE_VOLUME: volume,
            c.QUOTE_VOLUME: volume * vwap,
            c.BUY_VOLUME: buy,
            c.SELL_VOLUME: volume - buy,
            c.TRADES: trades.astype(np.int64),
            c.VWAP: vwap,
        }
    ).with_columns(pl.col(c.VWAP).fill_nan(None), pl.col(c.QUOTE_VOLUME).fill_nan(0.0))


def candles_from_rows(rows: list[dict], *, timeframe: str = "1m", symbol: str = "BTCUSDT") -> pl.DataFrame:
    """Candles from hand-written rows (timestamp_in, open, high, low, close, volume, base_volume, quote_volume, buy,
    sell, trades); base_volume defaults to volume (a spot instrument)."""
    out = []
    for row in rows:
        volume = row.get("volume", 1.0)
        base = row.get("base_volume", volume)
        quote = row.get("quote_volume", base * row["close"])
        out.append(
            {
                c.EXCHANGE: "binance", c.SYMBOL: symbol, c.TIMEFRAME: timeframe, c.TIMESTAMP_IN: row["timestamp_in"],
                c.OPEN: row.get("open", row["close"]), c.HIGH: row.get("high", row["close"]),
                c.LOW: row.get("low", row["close"]), c.CLOSE: row["close"], c.VOLUME: volume,
                c.BASE_VOLUME: base, c.QUOTE_VOLUME: quote,
                c.BUY_VOLUME: row.get("buy", volume), c.SELL_VOLUME: row.get("sell", 0.0),
                c.TRADES: row.get("trades", 1 if volume > 0 else 0),
                c.VWAP: quote / base if base > 0 else None,
            }
        )
    return pl.DataFrame(out).with_columns(pl.col(c.TIMESTAMP_IN).cast(TS))


def minutes(start: datetime, n: int, timeframe: str = "1m") -> list[datetime]:
    """n consecutive window starts of `timeframe` from `start`."""
    step = tfm.duration_us(timeframe)
    base = int(start.timestamp() * 1_000_000)
    return [datetime.fromtimestamp((base + i * step) / 1_000_000, tz=timezone.utc) for i in range(n)]
