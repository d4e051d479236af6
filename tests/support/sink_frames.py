"""Small candle and tick frames for the sink tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import duckdb
import polars as pl

from mdstream.contract import columns as c
from mdstream.contract import schema

T0 = datetime(2024, 1, 2, tzinfo=timezone.utc)


def candles(n: int, *, symbol: str = "BTCUSDT", start: datetime = T0, revision: int = 0, close: float = 100.0) -> pl.DataFrame:
    """n consecutive 15s candles of one symbol with the given revision and close."""
    frame = pl.DataFrame({
        c.EXCHANGE: "binance-futures",
        c.SYMBOL: symbol,
        c.TIMEFRAME: "15s",
        c.TIMESTAMP_IN: [start + timedelta(seconds=15 * i) for i in range(n)],
        c.CLOSE: [close + i for i in range(n)],
        c.TRADES: [1] * n,
        c.REVISION: revision,
        "sma_5": [close] * n,
    })
    return schema.conform(frame, schema.CANDLE_SCHEMA)


def ticks(ids: list[str | None], *, start: datetime = T0) -> pl.DataFrame:
    """Ticks one second apart with the given trade ids."""
    frame = pl.DataFrame({
        c.EXCHANGE: "binance-futures", c.SYMBOL: "BTCUSDT",
        c.TIMESTAMP: [start + timedelta(seconds=i) for i in range(len(ids))],
        c.LOCAL_TIMESTAMP: [start + timedelta(seconds=i, milliseconds=5) for i in range(len(ids))],
        c.ID: ids, c.SIDE: "buy", c.PRICE: 100.0, c.AMOUNT: 1.0,
    })
    return schema.conform(frame, schema.TICK_SCHEMA)


def rows(path, sql: str) -> list[tuple]:
    """Rows of `sql` on a fresh read-only connection (what another reader would see)."""
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()
