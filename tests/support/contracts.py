"""Builders for derivative-contract tests: contract-sized trades in Tardis and Binance COIN-M WebSocket formats,
and the candles a trader computes from them with Decimal arithmetic (the oracle)."""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, getcontext
from pathlib import Path

import numpy as np
import polars as pl

from mdstream.contract import columns as c
from mdstream.contract import timeframes as tfm
from mdstream.contract.schema import TICK_SCHEMA, conform

getcontext().prec = 50

FIELDS = (c.OPEN, c.HIGH, c.LOW, c.CLOSE, c.VOLUME, c.BASE_VOLUME, c.QUOTE_VOLUME, c.BUY_VOLUME, c.SELL_VOLUME,
          c.TRADES, c.VWAP)


def contract_trades(n: int, *, day: date, exchange: str, symbol: str, price: float, tick: float, seed: int,
                    first_id: int = 1_000_000, max_contracts: int = 400) -> pl.DataFrame:
    """n Tardis-format trades over one UTC day: whole contracts, a random-walk price on `tick`, epoch-us times."""
    rng = np.random.default_rng(seed)
    start = int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1_000_000)
    ts = np.sort(start + rng.integers(0, 86_400_000_000, n) // 1000 * 1000)
    steps = np.round(rng.normal(0, 3, n)) * tick
    prices = np.round(np.maximum(price + np.cumsum(steps), tick * 10) / tick) * tick
    decimals = max(0, -int(np.floor(np.log10(tick))))
    return pl.DataFrame({
        c.EXCHANGE: [exchange] * n, c.SYMBOL: [symbol] * n, c.TIMESTAMP: ts,
        c.LOCAL_TIMESTAMP: np.maximum.accumulate(ts + rng.integers(1_000, 50_000, n)),
        c.ID: (np.arange(n) + first_id).astype(str), c.SIDE: np.where(rng.random(n) < 0.5, "buy", "sell"),
        c.PRICE: np.round(prices, decimals), c.AMOUNT: rng.integers(1, max_contracts, n).astype(np.float64),
    })


def as_ticks(frame: pl.DataFrame) -> pl.DataFrame:
    """A Tardis-format frame (epoch-us times) as contract ticks."""
    return conform(frame.with_columns(
        pl.from_epoch(c.TIMESTAMP, time_unit="us").dt.replace_time_zone("UTC"),
        pl.from_epoch(c.LOCAL_TIMESTAMP, time_unit="us").dt.replace_time_zone("UTC"),
    ), TICK_SCHEMA)


def decimal_candles(frame: pl.DataFrame, timeframe: str, kind: str, size: float) -> dict[datetime, dict]:
    """Windows with trades of ONE series, in Decimal from the decimal text of every price and amount: OHLC,
    volume = sum amount, base = sum amount*s (sum amount*s/price for inverse), quote = sum price*amount*s
    (sum amount*s for inverse), buy/sell in volume units, vwap = quote / base. Rows must be in trade order."""
    width = tfm.duration_us(timeframe)
    s = Decimal(repr(size))
    out: dict[int, dict] = defaultdict(lambda: {"trades": 0})
    ts_us = frame[c.TIMESTAMP].dt.epoch("us") if frame[c.TIMESTAMP].dtype != pl.Int64 else frame[c.TIMESTAMP]
    for at, side, price, amount in zip(ts_us.to_list(), frame[c.SIDE], frame[c.PRICE], frame[c.AMOUNT]):
        p, a = Decimal(repr(price)), Decimal(repr(amount))
        w = out[at // width * width]
        if w["trades"] == 0:
            w.update({c.OPEN: p, c.HIGH: p, c.LOW: p, c.VOLUME: Decimal(0), c.BASE_VOLUME: Decimal(0),
                      c.QUOTE_VOLUME: Decimal(0), c.BUY_VOLUME: Decimal(0), c.SELL_VOLUME: Decimal(0)})
        w["trades"] += 1
        w[c.HIGH], w[c.LOW], w[c.CLOSE] = max(w[c.HIGH], p), min(w[c.LOW], p), p
        w[c.VOLUME] += a
        w[c.BASE_VOLUME] += a * s / p if kind == "inverse" else a * s
        w[c.QUOTE_VOLUME] += a * s if kind == "inverse" else p * a * s
        w[c.BUY_VOLUME if side == "buy" else c.SELL_VOLUME] += a if side in ("buy", "sell") else 0
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    result = {}
    for start, w in out.items():
        w[c.TRADES] = w.pop("trades")
        w[c.VWAP] = w[c.QUOTE_VOLUME] / w[c.BASE_VOLUME]
        result[epoch + timedelta(microseconds=start)] = w
    return result


def assert_matches_decimal(candles: pl.DataFrame, expected: dict[datetime, dict], *, rel: float = 1e-12) -> int:
    """Every window of `expected` equals the candle row of that window: OHLC and trades exactly, volumes and
    vwap within `rel` relative of the Decimal values. Returns the windows checked."""
    rows = {r[c.TIMESTAMP_IN]: r for r in candles.iter_rows(named=True)}
    for start, want in expected.items():
        got = rows[start]
        assert got[c.TRADES] == want[c.TRADES], (start, c.TRADES)
        for name in (c.OPEN, c.HIGH, c.LOW, c.CLOSE):
            assert got[name] == float(want[name]), (start, name)
        for name in (c.VOLUME, c.BUY_VOLUME, c.SELL_VOLUME, c.BASE_VOLUME, c.QUOTE_VOLUME, c.VWAP):
            value, truth = Decimal(repr(got[name])), want[name]
            assert abs(value - truth) <= Decimal(repr(rel)) * abs(truth), (start, name, got[name], truth)
    return len(expected)


def coinm_recording(frame: pl.DataFrame, path: Path, *, clock_lag_ms: int = 40) -> Path:
    """A gzip `<receive ns> <combined-stream JSON>` recording of Binance COIN-M `<symbol>@trade` messages
    (`{"e":"trade","E","T","s","t","p","q","X":"MARKET","m"}`) for a Tardis-format frame."""
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for row in frame.iter_rows(named=True):
            trade_ms = row[c.TIMESTAMP] // 1000
            data = {"e": "trade", "E": trade_ms + 3, "T": trade_ms, "s": row[c.SYMBOL], "t": int(row[c.ID]),
                    "p": repr(row[c.PRICE]), "q": str(int(row[c.AMOUNT])), "X": "MARKET", "m": row[c.SIDE] == "sell"}
            message = {"stream": f"{row[c.SYMBOL].lower()}@trade", "data": data}
            handle.write(f"{(trade_ms + clock_lag_ms) * 1_000_000} {json.dumps(message, separators=(',', ':'))}\n")
    return path
