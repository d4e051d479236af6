"""Simulated Tardis trade-day files for operations tests: ids continue from day to day as a real feed's do."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl

from mdstream.inputs.sample import trades_day, write_csv_gz

FIRST_ID = 4_000_000_000


def day_file(folder: Path, day: date, *, n: int = 5_000, symbol: str = "BTCUSDT", exchange: str = "binance-futures",
             first_id: int | None = None, gz: bool = True, span_s: int | None = None) -> Path:
    """One day of `n` trades named as Tardis names it; ids start at `first_id` (default: continuing from
    2024-01-01 at n per day); `span_s` squeezes the trades into the day's first seconds (a quick replay)."""
    frame = trades_day(n, day=day, symbol=symbol, exchange=exchange, seed=day.toordinal() % 1000)
    if span_s:
        start = frame["timestamp"].min() // 86_400_000_000 * 86_400_000_000
        squeeze = lambda col: (start + (pl.col(col) - start) * span_s // 86_400).alias(col)  # noqa: E731
        frame = frame.with_columns(squeeze("timestamp"), squeeze("local_timestamp"))
    start = FIRST_ID + (day - date(2024, 1, 1)).days * n if first_id is None else first_id
    frame = frame.with_columns((pl.int_range(0, n, dtype=pl.Int64) + start).cast(pl.String).alias("id"))
    name = f"{exchange}_trades_{day.isoformat()}_{symbol}.csv"
    folder.mkdir(parents=True, exist_ok=True)
    if gz:
        return write_csv_gz(frame, folder / f"{name}.gz")
    frame.write_csv(folder / name)
    return folder / name


def day_files(folder: Path, first: date, days: int, **kw) -> list[Path]:
    """`days` consecutive day files from `first`."""
    return [day_file(folder, first + timedelta(days=i), **kw) for i in range(days)]
