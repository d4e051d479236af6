"""Helpers shared by the SQL recomputation tests."""

from __future__ import annotations

from datetime import datetime, timezone

import duckdb
import polars as pl

from mdstream.contract import columns as c
from mdstream.contract import schema
from mdstream.contract import timeframes as tfm
from mdstream.ops.verify import recompute

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)


TRADES_CSV = "tardis/binance-futures_trades_2020-02-22_BTCUSDT.first9999rows.csv"


def sql_candles(ticks: pl.DataFrame, timeframes: tuple[str, ...] = tfm.ALL_TIMEFRAMES, **bounds) -> pl.DataFrame:
    """Candles of candles_from_ticks.sql over `ticks` loaded into an in-memory DuckDB, of `timeframes` (the SQL
    builds every registered one; the engine the defaults); `instruments=` passes the instrument frame through."""
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.register("arrived", schema.conform(ticks, schema.TICK_SCHEMA).to_arrow())
        con.execute("CREATE TABLE ticks AS SELECT * FROM arrived")  # a table: rowid is the arrival order
        return recompute(con, **bounds).filter(pl.col(c.TIMEFRAME).is_in(list(timeframes)))


def read_trades(folder) -> pl.DataFrame:
    """The real Tardis trades file as ticks."""
    frame = pl.read_csv(folder / TRADES_CSV, schema_overrides={c.ID: pl.String})
    frame = frame.with_columns(
        [pl.from_epoch(col, time_unit="us").dt.replace_time_zone("UTC") for col in (c.TIMESTAMP, c.LOCAL_TIMESTAMP)]
    )
    return schema.conform(frame, schema.TICK_SCHEMA)
