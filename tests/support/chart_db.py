"""A small DuckDB file of candles for the chart and serve tests: feed and quiet gaps, a revision, two UTC days,
two symbols, a symbol on two timeframes, quarantined rows; written through the real DuckDB sink."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl

from mdstream.contract import columns as c
from mdstream.contract import schema
from mdstream.sinks.duckdb import DuckDBSink

T0 = datetime(2024, 1, 1, 23, 0, tzinfo=timezone.utc)  # 1m windows cross UTC midnight after 60 minutes
N = 90
FEED = (10, 11, 12)
QUIET = (40, 41)
REVISED = 5
ETH_N = 30
FIVE_MIN_N = 18
QUARANTINE_REASONS = {"price is not a positive number": 3, "timestamp far in the future": 2}


def make_candles(symbol: str = "BTCUSDT", exchange: str = "binance-futures", n: int = N, minutes: int = 1,
                 start: datetime = T0, emitted: datetime | None = None, seed: int = 7) -> pl.DataFrame:
    """`n` candles of `minutes`-minute windows from `start`: a random walk, FEED and QUIET windows flagged (quiet ones
    empty and flat), session VWAP (vwap_day) restarting at UTC midnight, a few features; emitted 200 ms after close
    unless `emitted` stamps them all."""
    rng = np.random.default_rng(seed)
    close = np.round(42000 + np.cumsum(rng.normal(0, 15, n)), 1)  # a 0.1 tick
    opens = np.concatenate([[42000.0], close[:-1]])
    volume = rng.uniform(1, 20, n)
    quiet = [i for i in QUIET if i < n]
    for i in quiet:
        close[i] = opens[i] = close[i - 1]
        volume[i] = 0.0
    busy = volume > 0
    high = np.maximum(opens, close) + np.where(busy, 5.0, 0.0)
    low = np.minimum(opens, close) - np.where(busy, 5.0, 0.0)
    width = timedelta(minutes=minutes)
    starts = [start + i * width for i in range(n)]
    quote = volume * (high + low) / 2
    frame = pl.DataFrame({
        c.EXCHANGE: exchange, c.SYMBOL: symbol, c.TIMEFRAME: f"{minutes}m", c.TIMESTAMP_IN: starts,
        c.TIMESTAMP_OUT: [emitted or s + width + timedelta(milliseconds=200) for s in starts],
        c.OPEN: opens, c.HIGH: high, c.LOW: low, c.CLOSE: close, c.VOLUME: volume, c.QUOTE_VOLUME: quote,
        c.BUY_VOLUME: volume * 0.6, c.SELL_VOLUME: volume * 0.4,
        c.TRADES: np.where(busy, 10, 0), c.VWAP: np.where(busy, quote / np.where(busy, volume, 1), np.nan),
        c.GAP: [c.GAP_FEED if i in FEED else c.GAP_QUIET if i in quiet else None for i in range(n)],
        c.REVISION: 0, c.LATE_TRADES: 0,
        "rsi_5": rng.uniform(20, 80, n), "macd_hist": rng.normal(0, 1, n), "volatility_10": rng.uniform(0, 0.001, n),
    }).with_columns(
        pl.col(c.VWAP).fill_nan(None),
        (pl.col(c.TIMESTAMP_OUT) - pl.col(c.TIMESTAMP_IN) - pl.duration(minutes=minutes)).dt.total_milliseconds()
        .cast(pl.Float64).alias(c.LATENCY_MS),
    )
    day = pl.col(c.TIMESTAMP_IN).dt.date()
    cum_volume = pl.col(c.VOLUME).cum_sum().over(day)
    frame = frame.with_columns(pl.when(cum_volume > 0).then(pl.col(c.QUOTE_VOLUME).cum_sum().over(day) / cum_volume)
                               .alias("vwap_day"))
    return schema.conform(frame, schema.CANDLE_SCHEMA)


def revision_of(candles: pl.DataFrame, index: int = REVISED) -> pl.DataFrame:
    """Revision 1 of window `index`: close + 1 after two late trades."""
    return candles.slice(index, 1).with_columns(
        pl.lit(1, dtype=pl.Int64).alias(c.REVISION), pl.lit(2, dtype=pl.Int64).alias(c.LATE_TRADES),
        (pl.col(c.CLOSE) + 1).alias(c.CLOSE), (pl.col(c.HIGH) + 1).alias(c.HIGH),
        (pl.col(c.TIMESTAMP_OUT) + pl.duration(seconds=30)).alias(c.TIMESTAMP_OUT),
    )


def quarantine_rows() -> pl.DataFrame:
    """Rejected rows: QUARANTINE_REASONS (reason -> count), field price or timestamp."""
    rows = [{c.Q_SOURCE: "trades.csv", c.Q_LINE: i + 2, c.Q_FIELD: "price" if "price" in reason else "timestamp",
             c.Q_REASON: reason, c.Q_RAW: "x", c.Q_QUARANTINED_AT: T0}
            for reason, count in QUARANTINE_REASONS.items() for i in range(count)]
    return schema.conform(pl.DataFrame(rows), schema.QUARANTINE_SCHEMA)


def build(path: Path) -> Path:
    """Write the standard chart database to `path`: BTCUSDT 1m (N, with revision) and 5m, ETHUSDT 1m, quarantine."""
    btc = make_candles()
    frames = [btc, revision_of(btc), make_candles(n=FIVE_MIN_N, minutes=5), make_candles("ETHUSDT", n=ETH_N, seed=3)]
    sink = DuckDBSink(path)
    sink.write("candles", pl.concat(frames))
    sink.write("quarantine", quarantine_rows())
    sink.flush()
    sink.close()
    return path
