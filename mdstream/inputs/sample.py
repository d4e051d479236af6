"""Simulated trade days in Tardis CSV format (offline demo, tests, benchmarks)."""

from __future__ import annotations

import gzip
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl

from ..contract.timeframes import epoch_us


def trades_day(
    n: int, *, day: date = date(2024, 1, 1), exchange: str = "binance-futures", symbol: str = "BTCUSDT", seed: int = 7
) -> pl.DataFrame:
    """n trades over one UTC day: bursty arrivals, random-walk price on a 0.1 tick, lognormal sizes."""
    rng = np.random.default_rng(seed)
    start_us = epoch_us(datetime(day.year, day.month, day.day, tzinfo=timezone.utc))
    # Bursty: a time-varying intensity makes trades cluster, as real flow does.
    intensity = rng.gamma(0.5, 2.0, size=1440).repeat(60)
    cdf = np.cumsum(intensity) / intensity.sum()
    seconds = np.searchsorted(cdf, np.sort(rng.random(n))) + rng.random(n)
    ts = start_us + np.minimum((seconds * 1e6).astype(np.int64) // 1000 * 1000, 86_400_000_000 - 1)
    ts.sort()
    price = np.round(40_000 + np.cumsum(rng.normal(0, 0.8, n)), 1)
    amount = np.round(rng.lognormal(-5, 1.3, n), 3) + 0.001
    return pl.DataFrame(
        {
            "exchange": pl.Series([exchange]).extend_constant(exchange, n - 1),
            "symbol": pl.Series([symbol]).extend_constant(symbol, n - 1),
            "timestamp": ts,
            # Receive times never run backwards within one connection, so they rise with the trade id.
            "local_timestamp": np.maximum.accumulate(ts + rng.integers(2_000, 90_000, n)),
            "id": (np.arange(n) + 4_000_000_000).astype(str),
            "side": np.where(rng.random(n) < 0.5, "buy", "sell"),
            "price": price,
            "amount": amount,
        }
    )


def write_csv_gz(df: pl.DataFrame, path: Path) -> Path:
    """Write `df` as a gzip CSV, the way Tardis publishes datasets."""
    with gzip.open(path, "wb", compresslevel=6) as fh:
        df.write_csv(fh)  # type: ignore[call-overload]  # any binary file object will do
    return path


def demo_files(folder: Path, *, day: date = date(2024, 1, 1), n: int = 200_000) -> list[Path]:
    """Two simulated symbols' days (BTCUSDT, ETHUSDT) written as Tardis trade files under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, (symbol, base) in enumerate((("BTCUSDT", 1.0), ("ETHUSDT", 0.055))):
        path = folder / f"binance-futures_trades_{day.isoformat()}_{symbol}.csv.gz"
        if not path.exists():
            frame = trades_day(n // (i + 1), day=day, symbol=symbol, seed=11 + i)
            frame = frame.with_columns((pl.col("price") * base).round(2 if base < 1 else 1))
            write_csv_gz(frame, path)
        out.append(path)
    return out
