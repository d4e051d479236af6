"""Realistic Tardis trade-day shapes for the backfill benchmark: each stresses another part of the path."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timezone

import numpy as np
import polars as pl

from mdstream.contract.timeframes import epoch_us
from mdstream.inputs.sample import trades_day

DAY = date(2024, 1, 1)
_DAY_US = 86_400_000_000


def _start_us() -> int:
    """Epoch µs of the benchmark day's midnight."""
    return epoch_us(datetime(DAY.year, DAY.month, DAY.day, tzinfo=timezone.utc))


def ms_ties(n: int) -> pl.DataFrame:
    """Millisecond exchange times (many trades share one), receive times rising with the id: a Binance day."""
    return trades_day(n, day=DAY)


def us_times(n: int) -> pl.DataFrame:
    """Microsecond exchange times (few ties), monotonic receive times: a Coinbase/Bybit-like day."""
    rng = np.random.default_rng(21)
    frame = trades_day(n, day=DAY, seed=21)
    ts = np.sort(_start_us() + rng.integers(0, _DAY_US, n))
    return frame.with_columns(
        pl.Series("timestamp", ts),
        pl.Series("local_timestamp", np.maximum.accumulate(ts + rng.integers(2_000, 90_000, n))),
    )


def jitter(n: int) -> pl.DataFrame:
    """µs exchange times in bursts, receive times with network jitter (not monotonic: ties receive out of order)."""
    rng = np.random.default_rng(33)
    frame = trades_day(n, day=DAY, seed=33)
    ms = frame["timestamp"].dt.epoch("us").to_numpy()
    # Half the trades keep their ms time (bursty ties), half get µs precision.
    ts = np.sort(ms + np.where(rng.random(n) < 0.5, 0, rng.integers(0, 1000, n)))
    lts = ts + rng.integers(2_000, 90_000, n)  # independent latency per trade: not monotonic
    return frame.with_columns(
        pl.Series("timestamp", ts),
        pl.Series("local_timestamp", lts),
    )


def bursts(n: int) -> pl.DataFrame:
    """Most of the day's trades inside a few one-minute bursts (liquidation cascades), ms ties within them."""
    rng = np.random.default_rng(44)
    frame = trades_day(n, day=DAY, seed=44)
    centres = rng.integers(0, _DAY_US - 60_000_000, 8)
    burst = rng.random(n) < 0.7
    quiet = rng.integers(0, _DAY_US, n)
    inside = centres[rng.integers(0, 8, n)] + rng.integers(0, 60_000_000, n)
    ts = np.sort(_start_us() + np.where(burst, inside, quiet) // 1000 * 1000)
    return frame.with_columns(
        pl.Series("timestamp", ts),
        pl.Series("local_timestamp", np.maximum.accumulate(ts + rng.integers(2_000, 90_000, n))),
    )


def multi_symbol(n: int) -> pl.DataFrame:
    """Four symbols interleaved in one file in time order (a grouped or exported dataset)."""
    parts = []
    for i, symbol in enumerate(("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT")):
        parts.append(trades_day(n // 4 + (n % 4 if i == 0 else 0), day=DAY, symbol=symbol, seed=50 + i))
    return pl.concat(parts).sort("timestamp", "local_timestamp", maintain_order=True)


def out_of_order(n: int) -> pl.DataFrame:
    """Rows in receive order while ~1% of exchange times run a few ms behind their predecessor (some venues)."""
    rng = np.random.default_rng(66)
    frame = trades_day(n, day=DAY, seed=66)
    ts = frame["timestamp"].dt.epoch("us").to_numpy().copy()
    late = rng.random(n) < 0.01
    late[0] = False
    # A late trade carries a time up to 20 ms before its predecessor's, whatever the day's density.
    where = np.flatnonzero(late)
    ts[where] = ts[where - 1] - rng.integers(1, 20, where.size) * 1000
    return frame.with_columns(pl.Series("timestamp", ts))


SHAPES: dict[str, Callable[[int], pl.DataFrame]] = {
    "ms-ties": ms_ties,
    "us-times": us_times,
    "jitter": jitter,
    "bursts": bursts,
    "multi-symbol": multi_symbol,
    "out-of-order": out_of_order,
}
