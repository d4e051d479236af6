"""ParquetSink: hive layout, atomic idempotent days, stream batches deduplicated by readers."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import polars as pl
import pytest

from mdstream.contract import columns as c
from mdstream.contract import schema
from mdstream.contract.errors import SinkError
from mdstream.sinks import base
from mdstream.sinks.parquet import (
    ParquetSink,
    partition_dir,
    read_candles,
    scan,
    split,
    write_atomic,
)
from support.sink_frames import T0, candles, ticks


def files(root) -> list[str]:
    """Every file under root, relative, sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_day_layout_and_both_readers(tmp_path):
    sink = ParquetSink(tmp_path)
    one_minute = candles(4).with_columns(pl.lit("1m").alias(c.TIMEFRAME))
    sink.write_day("binance-futures", "BTCUSDT", "2024-01-02",
                   {base.CANDLES: pl.concat([candles(8), one_minute]), base.TICKS: ticks(["1", "2"])})
    assert files(tmp_path) == [
        "candles/exchange=binance-futures/symbol=BTCUSDT/timeframe=15s/date=2024-01-02/part.parquet",
        "candles/exchange=binance-futures/symbol=BTCUSDT/timeframe=1m/date=2024-01-02/part.parquet",
        "ticks/exchange=binance-futures/symbol=BTCUSDT/date=2024-01-02/part.parquet",
    ]
    frame = scan(tmp_path, base.CANDLES).collect()
    assert frame.schema == pl.Schema(schema.CANDLE_SCHEMA)
    assert frame.group_by(c.TIMEFRAME).len().sort(c.TIMEFRAME).rows() == [("15s", 8), ("1m", 4)]
    glob = str(tmp_path / "candles" / "**" / "*.parquet")
    counted = duckdb.sql(f"SELECT timeframe, count(*), min(date)::VARCHAR FROM read_parquet('{glob}', hive_partitioning = true) GROUP BY ALL ORDER BY ALL").fetchall()
    assert counted == [("15s", 8, "2024-01-02"), ("1m", 4, "2024-01-02")]


def test_rerunning_a_day_replaces_it_and_removes_stream_files(tmp_path):
    sink = ParquetSink(tmp_path, run_id="s1")
    sink.write(base.CANDLES, candles(3, close=1.0))
    sink.write(base.CANDLES, candles(2, start=T0 + timedelta(days=1)))   # another day: untouched by the rerun
    sink.flush()
    sink.write_day("binance-futures", "BTCUSDT", "2024-01-02", {base.CANDLES: candles(5, close=50.0)})
    sink.write_day("binance-futures", "BTCUSDT", "2024-01-02", {base.CANDLES: candles(6, close=60.0)})
    days = read_candles(tmp_path).group_by(pl.col(c.TIMESTAMP_IN).dt.date()).agg(pl.len(), pl.col(c.CLOSE).min()).sort(c.TIMESTAMP_IN).collect()
    assert days.rows() == [(T0.date(), 6, 60.0), ((T0 + timedelta(days=1)).date(), 2, 100.0)]
    assert not any(name.endswith(".tmp") for name in files(tmp_path))
    assert sum("part-s1-" in name for name in files(tmp_path)) == 1


def test_stream_batches_append_and_readers_take_the_latest_revision(tmp_path):
    sink = ParquetSink(tmp_path, run_id="s1")
    sink.write(base.CANDLES, candles(4))
    sink.flush()
    sink.write(base.CANDLES, candles(4))                       # the same batch re-sent after a crash
    sink.write(base.CANDLES, candles(1, revision=1, close=7.0))
    sink.write(base.QUARANTINE, pl.DataFrame({c.Q_SOURCE: "ws", c.Q_FIELD: "p", c.Q_REASON: "bad", c.Q_RAW: "{}", c.Q_QUARANTINED_AT: [T0]}))
    sink.close()
    names = files(tmp_path)
    assert "candles/exchange=binance-futures/symbol=BTCUSDT/timeframe=15s/date=2024-01-02/part-s1-000002.parquet" in names
    assert "quarantine/date=2024-01-02/part-s1-000002.parquet" in names
    latest = read_candles(tmp_path).collect()
    assert latest.height == 4
    assert latest.select(c.REVISION, c.CLOSE).row(0) == (1, 7.0)
    assert scan(tmp_path, base.QUARANTINE).collect().height == 1


def test_write_day_rejects_rows_of_another_day(tmp_path):
    with pytest.raises(SinkError, match="does not belong"):
        ParquetSink(tmp_path).write_day("binance-futures", "BTCUSDT", "2024-01-03", {base.CANDLES: candles(2)})


def test_files_from_before_a_new_column_still_read(tmp_path):
    for values, rows in split(base.CANDLES, candles(2)):
        write_atomic(rows.drop("macd_hist"), partition_dir(tmp_path, base.CANDLES, values) / "part-0-old.parquet")
    sink = ParquetSink(tmp_path, run_id="new")
    sink.write(base.CANDLES, candles(2, start=T0 + timedelta(minutes=1)).with_columns(pl.lit(1.5).alias("macd_hist")))
    sink.close()
    frame = read_candles(tmp_path).collect()
    assert frame["macd_hist"].to_list() == [None, None, 1.5, 1.5]
