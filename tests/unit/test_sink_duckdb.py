"""DuckDBSink: schema and migration, idempotent stream flushes, atomic day replacement."""

from __future__ import annotations

import time
from datetime import timedelta

import duckdb
import polars as pl
import pytest

from mdstream.contract import columns as c
from mdstream.contract import schema
from mdstream.contract.errors import SinkError
from mdstream.sinks import base
from mdstream.sinks.duckdb import DuckDBSink
from mdstream.sinks.duckdb_schema import create_table_sql
from support.sink_frames import T0, candles, rows, ticks


def test_tables_follow_the_schema_and_views_exist(tmp_path):
    db = tmp_path / "m.duckdb"
    DuckDBSink(db).close()
    described = rows(db, "SELECT column_name, column_type FROM (DESCRIBE candles)")
    assert [name for name, _ in described] == list(schema.CANDLE_SCHEMA)
    assert dict(described)[c.TIMESTAMP_IN] == "TIMESTAMP WITH TIME ZONE"
    assert [r[0] for r in rows(db, "SELECT column_name FROM (DESCRIBE ticks)")] == list(schema.TICK_SCHEMA)
    views = {r[0] for r in rows(db, "SELECT view_name FROM duckdb_views() WHERE NOT internal")}
    assert {"candles_latest", "candles_15s", "candles_1d", "data_quality", "quarantine_summary"} <= views


def test_same_key_twice_is_one_row_and_latest_revision_wins(tmp_path):
    db = tmp_path / "m.duckdb"
    sink = DuckDBSink(db)
    sink.write(base.CANDLES, candles(10))
    sink.write(base.CANDLES, candles(10, close=200.0))  # same keys within one batch: the last copy wins
    sink.flush()
    sink.write(base.CANDLES, candles(10, close=300.0))  # same keys in a later batch replace the stored rows
    sink.flush()
    sink.write(base.CANDLES, candles(2, revision=1, close=400.0))
    sink.close()
    assert rows(db, "SELECT count(*), min(close) FROM candles WHERE revision = 0") == [(10, 300.0)]
    latest = rows(db, "SELECT revision, close FROM candles_latest ORDER BY timestamp_in")
    assert latest[:3] == [(1, 400.0), (1, 401.0), (0, 302.0)]
    assert len(latest) == 10
    assert rows(db, "SELECT candles, revised_candles, revisions FROM data_quality") == [(10, 2, 2)]


def test_ticks_are_deduplicated_by_id_and_null_ids_kept(tmp_path):
    db = tmp_path / "m.duckdb"
    sink = DuckDBSink(db)
    sink.write(base.TICKS, ticks(["1", "2", "2", None]))
    sink.flush()
    sink.write(base.TICKS, ticks(["1", "2", "3"]))
    sink.close()
    assert rows(db, "SELECT id FROM ticks ORDER BY timestamp, id") == [("1",), ("2",), ("3",), (None,)]


def test_failed_flush_applies_nothing_and_keeps_the_buffer(tmp_path):
    db = tmp_path / "m.duckdb"
    sink = DuckDBSink(db)
    sink.write(base.CANDLES, candles(5))
    sink.write(base.TICKS, ticks(["1"]))
    original = sink._upsert
    sink._upsert = lambda kind, frame: (_ for _ in ()).throw(duckdb.IOException("disk full")) if kind == base.TICKS else original(kind, frame)
    with pytest.raises(SinkError, match="disk full"):
        sink.flush()
    assert sink.con.execute("SELECT count(*) FROM candles").fetchone() == (0,)
    sink._upsert = original
    sink.flush()
    assert sink.con.execute("SELECT count(*) FROM candles").fetchone() == (5,)
    assert sink.con.execute("SELECT count(*) FROM ticks").fetchone() == (1,)
    sink.close()


def test_additive_migration_keeps_data(tmp_path):
    db = tmp_path / "old.duckdb"
    old_schema = {k: v for k, v in schema.CANDLE_SCHEMA.items() if k not in ("macd_hist", "cs_spread")}
    with duckdb.connect(str(db)) as con:
        con.execute(create_table_sql("candles", old_schema))
        old = candles(3).drop("macd_hist", "cs_spread").to_arrow()
        con.register("old", old)
        con.execute("INSERT INTO candles SELECT * FROM old")
    sink = DuckDBSink(db)
    assert sink.migrated == ["candles.cs_spread", "candles.macd_hist"]
    sink.write(base.CANDLES, candles(1, start=T0 + timedelta(hours=1)).with_columns(pl.lit(0.5).alias("macd_hist")))
    sink.close()
    assert rows(db, "SELECT count(*), count(macd_hist), sum(sma_5) FROM candles_latest") == [(4, 1, 400.0)]


def test_write_day_replaces_only_that_day_and_symbol(tmp_path):
    db = tmp_path / "m.duckdb"
    sink = DuckDBSink(db)
    day2 = T0 + timedelta(days=1)
    sink.write(base.CANDLES, candles(4, start=day2))          # the next day stays
    sink.write(base.CANDLES, candles(4, symbol="ETHUSDT"))     # another symbol stays
    sink.flush()
    quarantine = pl.DataFrame({c.Q_SOURCE: "binance-futures_trades_2024-01-02_BTCUSDT.csv.gz", c.Q_LINE: [7],
                               c.Q_FIELD: "price", c.Q_REASON: "not a number", c.Q_RAW: "x", c.Q_QUARANTINED_AT: [T0]})
    frames = {base.CANDLES: candles(20, revision=1), base.TICKS: ticks(["1", "2"]), base.QUARANTINE: quarantine}
    sink.write_day("binance-futures", "BTCUSDT", "2024-01-02", frames)
    frames[base.CANDLES] = candles(8)                           # re-run: fewer candles, revision 0
    sink.write_day("binance-futures", "BTCUSDT", "2024-01-02", frames)
    sink.close()
    per = rows(db, "SELECT symbol, CAST(timestamp_in AS DATE)::VARCHAR, count(*), max(revision) FROM candles GROUP BY ALL ORDER BY ALL")
    assert per == [("BTCUSDT", "2024-01-02", 8, 0), ("BTCUSDT", "2024-01-03", 4, 0), ("ETHUSDT", "2024-01-02", 4, 0)]
    assert rows(db, "SELECT count(*) FROM ticks") == [(2,)]
    assert rows(db, "SELECT rows FROM quarantine_summary") == [(1,)]


def test_write_day_failing_after_the_delete_leaves_the_previous_state(tmp_path):
    db = tmp_path / "m.duckdb"
    sink = DuckDBSink(db)
    sink.write_day("binance-futures", "BTCUSDT", "2024-01-02", {base.CANDLES: candles(6), base.TICKS: ticks(["1"])})
    calls = []
    original = sink._insert

    def insert_then_fail(kind, frame):
        """Insert candles for real, then fail on ticks: the delete and one insert already ran."""
        calls.append(kind)
        if kind == base.TICKS:
            raise duckdb.IOException("simulated crash while inserting ticks")
        original(kind, frame)

    sink._insert = insert_then_fail
    with pytest.raises(SinkError, match="simulated crash"):
        sink.write_day("binance-futures", "BTCUSDT", "2024-01-02",
                       {base.CANDLES: candles(3, close=999.0), base.TICKS: ticks(["5", "6"])})
    assert calls == [base.CANDLES, base.TICKS]
    sink.con.close()
    assert rows(db, "SELECT count(*), min(close) FROM candles") == [(6, 100.0)]
    assert rows(db, "SELECT id FROM ticks") == [("1",)]


def test_write_days_replaces_several_series_days_all_or_nothing(tmp_path):
    db = tmp_path / "m.duckdb"
    sink = DuckDBSink(db)
    assert base.can(sink, base.WRITE_DAYS)
    day = "2024-01-02"
    base.write_days(sink, [("binance-futures", "BTCUSDT", day, {base.CANDLES: candles(6)}),
                           ("binance-futures", "ETHUSDT", day, {base.CANDLES: candles(6, symbol="ETHUSDT")})])
    original = sink._insert

    def fail(kind, frame):
        """The second series' rows go in with the first's: fail after the deletes of both."""
        raise duckdb.IOException("simulated crash while inserting")

    sink._insert = fail
    again = [("binance-futures", "BTCUSDT", day, {base.CANDLES: candles(3, close=999.0)}),
             ("binance-futures", "ETHUSDT", day, {base.CANDLES: candles(4, symbol="ETHUSDT", close=999.0)})]
    with pytest.raises(SinkError, match="nothing applied.*simulated crash"):
        base.write_days(sink, again)
    per = "SELECT symbol, count(*), max(close) FROM candles GROUP BY ALL ORDER BY ALL"
    assert sink.con.execute(per).fetchall() == [("BTCUSDT", 6, 105.0), ("ETHUSDT", 6, 105.0)]
    sink._insert = original
    base.write_days(sink, again)
    sink.close()
    assert rows(db, per) == [("BTCUSDT", 3, 1001.0), ("ETHUSDT", 4, 1002.0)]


def test_backfill_day_of_candles_is_fast(tmp_path):
    sink = DuckDBSink(tmp_path / "m.duckdb")
    day = candles(7000)
    started = time.perf_counter()
    for _ in range(3):
        sink.write_day("binance-futures", "BTCUSDT", "2024-01-02", {base.CANDLES: day})
    elapsed = (time.perf_counter() - started) / 3
    sink.close()
    assert elapsed < 1.0, f"write_day of 7,000 candles took {elapsed:.3f}s"


def test_a_backfill_sink_is_imported_and_opened_on_a_thread_its_first_use_waits(tmp_path):
    """open_sink for a backfill returns at once; the first operation waits for the open (and raises its error)."""
    from mdstream.sinks.factory import Opening, SinkOptions, open_sink

    sink = open_sink(SinkOptions(duckdb_path=tmp_path / "b.duckdb"), mode="backfill")
    assert isinstance(sink, Opening)
    assert sink.read_candles(exchange="binance").height == 0
    sink.close()
    assert not (tmp_path / "b.duckdb").exists(), "a sink that wrote nothing leaves no file behind"
    (tmp_path / "not-a-db.duckdb").write_text("plain text, not a database")
    broken = open_sink(SinkOptions(duckdb_path=tmp_path / "not-a-db.duckdb"), mode="backfill")
    with pytest.raises(SinkError, match="not-a-db.duckdb"):
        broken.read_candles(exchange="binance")
    with pytest.raises(SinkError):
        broken.close()
