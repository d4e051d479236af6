"""A store written before `base_volume` existed gains the column in place and keeps every row (DuckDB, Parquet)."""

from __future__ import annotations

from datetime import date, datetime, timezone

import duckdb
import polars as pl

from mdstream.contract import columns as c
from mdstream.contract import schema
from mdstream.contract.clock import ManualClock
from mdstream.inputs.sample import trades_day, write_csv_gz
from mdstream.jobs.backfill import BackfillOptions, run_backfill
from mdstream.ops.verify import verify_duckdb
from mdstream.sinks import parquet
from mdstream.sinks.duckdb import DuckDBSink
from mdstream.sinks.duckdb_schema import create_table_sql
from support.contracts import contract_trades

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)
OLD_CANDLES = {k: v for k, v in schema.CANDLE_SCHEMA.items() if k != c.BASE_VOLUME}  # the previous contract


def backfill(db, paths, **opts):
    sink = DuckDBSink(db)
    try:
        return run_backfill(BackfillOptions(inputs=tuple(paths), store_ticks=True, **opts), sink, ManualClock(NOW))
    finally:
        sink.close()


def test_duckdb_file_of_the_previous_schema_gains_base_volume_and_keeps_its_rows(tmp_path):
    # A file as the previous release wrote it: candles without base_volume, from a real backfill.
    spot = write_csv_gz(trades_day(5_000, day=date(2024, 1, 1), seed=3), tmp_path / "binance-futures_2024-01-01.csv.gz")
    current = tmp_path / "current.duckdb"
    backfill(current, [spot], timeframes=("1m", "1d"))
    with duckdb.connect(str(current), read_only=True) as con:
        written = pl.from_arrow(con.sql("SELECT * FROM candles ORDER BY ALL").to_arrow_table())
    old = tmp_path / "old.duckdb"
    with duckdb.connect(str(old)) as con:
        con.execute(create_table_sql("candles", OLD_CANDLES))
        con.register("rows", written.drop(c.BASE_VOLUME).to_arrow())
        con.execute("INSERT INTO candles BY NAME SELECT * FROM rows")
    before = written.height

    sink = DuckDBSink(old)
    assert "candles.base_volume" in sink.migrated
    stored = pl.from_arrow(sink.con.sql("SELECT * FROM candles").to_arrow_table())
    assert stored.height == before and stored[c.BASE_VOLUME].null_count() == before  # kept; never computed
    latest = pl.from_arrow(sink.con.sql("SELECT * FROM candles_latest ORDER BY timeframe, timestamp_in").to_arrow_table())
    assert latest[c.BASE_VOLUME].equals(latest[c.VOLUME].rename(c.BASE_VOLUME))  # the rule the rows were made with
    daily = sink.con.execute("SELECT volume, base_volume FROM daily_summary").fetchall()
    assert daily and all(v == b for v, b in daily)
    sink.close()
    again = DuckDBSink(old)
    assert again.migrated == []  # once
    again.close()

    # The next day goes on in the same file, features continuing from the migrated rows.
    nxt = write_csv_gz(trades_day(5_000, day=date(2024, 1, 2), seed=4), tmp_path / "binance-futures_2024-01-02.csv.gz")
    backfill(old, [nxt], timeframes=("1m", "1d"))
    with duckdb.connect(str(old), read_only=True) as con:
        days = con.execute("SELECT count(*), count(base_volume), count(vwap_day) FROM candles WHERE timeframe = '1d'").fetchone()
    assert days == (2, 1, 2)
    assert verify_duckdb(old, from_="2024-01-02", to="2024-01-03").ok


def test_parquet_files_of_the_previous_schema_read_with_base_volume(tmp_path):
    frame = contract_trades(500, day=date(2024, 8, 8), exchange="bitmex", symbol="XBTUSD", price=9_000, tick=0.5, seed=2)
    path = write_csv_gz(frame, tmp_path / "bitmex_trades_2024-08-08_XBTUSD.csv.gz")
    root = tmp_path / "pq"
    sink = parquet.ParquetSink(root)
    run_backfill(BackfillOptions(inputs=(path,), timeframes=("1m",)), sink, ManualClock(NOW))
    sink.close()
    new = parquet.read_candles(root).collect()
    assert (new[c.QUOTE_VOLUME] == new[c.VOLUME]).all()  # inverse 1 USD contracts: notional = contracts
    # An older file of another series, without the column, in the same tree.
    old_rows = new.with_columns(pl.lit("OLDUSDT").alias(c.SYMBOL), pl.col(c.VOLUME) * 2)
    for values, rows in parquet.split("candles", old_rows):
        parquet.write_atomic(rows.drop(c.BASE_VOLUME), parquet.partition_dir(root, "candles", values) / "part-old.parquet")
    both = parquet.read_candles(root).collect()
    assert both.height == 2 * new.height
    old = both.filter(pl.col(c.SYMBOL) == "OLDUSDT")
    assert old[c.BASE_VOLUME].equals(old[c.VOLUME].rename(c.BASE_VOLUME))
    kept = both.filter(pl.col(c.SYMBOL) == "XBTUSD").sort(c.TIMESTAMP_IN)
    assert kept[c.BASE_VOLUME].equals(new.sort(c.TIMESTAMP_IN)[c.BASE_VOLUME])
