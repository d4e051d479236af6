"""BigQuery sink against the local emulator: schema, exactly-once appends, atomic days, views, read-back."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import polars as pl
import pytest

from mdstream.contract import columns as c
from mdstream.contract import schema as s
from mdstream.sinks.base import CANDLES, TICKS
from mdstream.sinks.bigquery import BigQuerySink, read_candles
from mdstream.sinks.bigquery.config import rest_client, write_client
from mdstream.sinks.bigquery.schema import (
    TABLES,
    ensure_tables,
    schema_fields,
    to_arrow,
)
from mdstream.sinks.bigquery.writer import StreamWriter
from support.bq_emulator import candles, config_for, unique_symbol

pytestmark = pytest.mark.bigquery


@pytest.fixture
def config(bq_emulator, bq_dataset, tmp_path):
    """The session's dataset (tests keep apart by symbol), spool under tmp_path."""
    return config_for(bq_emulator, tmp_path, bq_dataset)


@pytest.fixture
def symbol() -> str:
    """This test's own symbol."""
    return unique_symbol()


def count(config, table: str, symbol: str, where: str = "TRUE") -> int:
    """Rows of `table` for `symbol` matching `where`."""
    sql = f"SELECT COUNT(*) AS n FROM `{config.table_id(table)}` WHERE symbol = '{symbol}' AND {where}"
    return next(iter(rest_client(config).query(sql).result()))["n"]


def test_init_creates_partitioned_clustered_described_tables_and_migrates_additively(bq_emulator, tmp_path):
    config = config_for(bq_emulator, tmp_path, f"t_{uuid.uuid4().hex[:10]}")
    client = rest_client(config)
    # An older release: the candles table without the last three feature columns, already holding a row.
    spec = TABLES[CANDLES]
    old_fields = [f for f in schema_fields(spec) if f.name not in ("macd", "macd_signal", "macd_hist")]
    from google.cloud import bigquery

    client.create_dataset(bigquery.Dataset(f"{config.project}.{config.dataset}"))
    client.create_table(bigquery.Table(config.table_id(CANDLES), schema=old_fields))
    client.query(f"INSERT INTO `{config.table_id(CANDLES)}` (exchange, symbol, timeframe, timestamp_in, revision, close)"
                 " VALUES ('binance', 'BTCUSDT', '1m', TIMESTAMP '2020-02-22 00:00:00+00', 0, 9700.5)").result()

    added = ensure_tables(client, config)

    assert added[CANDLES] == ["macd", "macd_signal", "macd_hist"]
    assert added[TICKS] == []  # created
    candles_table = client.get_table(config.table_id(CANDLES))
    assert [f.name for f in candles_table.schema] == list(s.CANDLE_SCHEMA)
    rows = list(client.query(f"SELECT close, macd FROM `{config.table_id(CANDLES)}`").result())
    assert [(r["close"], r["macd"]) for r in rows] == [(9700.5, None)]  # old data kept, new column null
    ticks = client.get_table(config.table_id(TICKS))
    assert ticks.time_partitioning.field == c.TIMESTAMP and ticks.time_partitioning.type_ == "DAY"
    assert ticks.clustering_fields == [c.EXCHANGE, c.SYMBOL]
    assert {f.name: f.description for f in ticks.schema} == {k: s.DESCRIPTIONS[k] for k in s.TICK_SCHEMA}
    assert ensure_tables(client, config) == {CANDLES: [], TICKS: [], "quarantine": []}  # idempotent


def test_committed_stream_retried_offset_is_not_written_twice(config, symbol):
    sink = BigQuerySink(config, mode="stream")
    first, second = candles(symbol, count=50), candles(symbol, count=30, start="2020-02-22T00:50:00")
    sink.write(CANDLES, first)
    sink.flush()
    sink.write(CANDLES, second)
    sink.flush()
    stream, offset = sink.state()["streams"][CANDLES].values()
    assert offset == 80 and count(config, CANDLES, symbol) == 80

    # The acknowledgement of the second batch was lost: the client re-sends it at the same offset.
    writer = StreamWriter(write_client(config), config.request_limit_bytes, config.timeout_seconds)
    result = writer.append(stream, 50, to_arrow(CANDLES, second))
    assert (result.rows, result.duplicates) == (0, 30)
    # And through the sink's own retry path (a spooled batch remembers where it was first sent).
    sink._send(CANDLES, to_arrow(CANDLES, first), {"stream": stream, "offset": 0})
    assert count(config, CANDLES, symbol) == 80
    assert sink.stats.rows[CANDLES] == 80 and sink.stats.duplicates_skipped == 50
    assert sink.summary().startswith("BigQuery: 80 rows streamed, ~")


def test_large_batch_is_split_under_the_request_limit(config, symbol):
    sink = BigQuerySink(config.with_(request_limit_bytes=64 * 1024), mode="stream")
    frame = candles(symbol, count=600, timeframe="15s")
    assert to_arrow(CANDLES, frame).nbytes > 3 * 64 * 1024  # needs several requests
    sink.write(CANDLES, frame)
    sink.flush()
    assert count(config, CANDLES, symbol) == 600


def test_backfill_day_is_atomic_and_a_rerun_replaces_it(config, symbol):
    sink = BigQuerySink(config, mode="backfill")
    day = candles(symbol, count=96, timeframe="15m")
    next_day = candles(symbol, count=4, timeframe="15m", start="2020-02-23T00:00:00")
    sink.write_day("binance-futures", symbol, "2020-02-23", {CANDLES: next_day})
    sink.write_day("binance-futures", symbol, "2020-02-22", {CANDLES: day})
    assert count(config, CANDLES, symbol) == 100

    # Re-run of the 22nd with corrected values: still 96 rows for that day, the new ones, the 23rd untouched.
    corrected = day.with_columns(pl.col(c.CLOSE) + 1.0)
    sink.write_day("binance-futures", symbol, "2020-02-22", {CANDLES: corrected})
    assert count(config, CANDLES, symbol, "DATE(timestamp_in) = '2020-02-22'") == 96
    assert count(config, CANDLES, symbol, "DATE(timestamp_in) = '2020-02-23'") == 4
    total = next(iter(rest_client(config).query(
        f"SELECT SUM(close) AS t FROM `{config.table_id(CANDLES)}` "
        f"WHERE symbol = '{symbol}' AND DATE(timestamp_in) = '2020-02-22'").result()))
    assert total["t"] == pytest.approx(corrected[c.CLOSE].sum())

    # Until the commit, a pending stream's rows are invisible: a day appears whole or not at all.
    writer, path = sink.writer, config.table_path(CANDLES)
    name = writer.create(path, pending=True)
    writer.append(name, 0, to_arrow(CANDLES, candles(symbol, count=10, start="2020-02-24T00:00:00")))
    writer.finalize(name)
    assert count(config, CANDLES, symbol, "DATE(timestamp_in) = '2020-02-24'") == 0
    writer.commit(path, [name])
    assert count(config, CANDLES, symbol, "DATE(timestamp_in) = '2020-02-24'") == 10


def test_views_show_the_latest_revision_once_per_key(config, symbol):
    sink = BigQuerySink(config, mode="stream")
    base = candles(symbol, count=20)
    late = candles(symbol, count=3).with_columns(pl.lit(1).cast(pl.Int64).alias(c.REVISION),
                                         (pl.col(c.CLOSE) + 5).alias(c.CLOSE))
    sink.write(CANDLES, base)
    sink.write(CANDLES, late)
    sink.write(CANDLES, base.head(2))  # the same key written twice must still show one row
    sink.flush()
    client = rest_client(config)
    latest = pl.from_arrow(client.query(
        f"SELECT * FROM `{config.project}.{config.dataset}.candles_1m` WHERE symbol = '{symbol}' ORDER BY timestamp_in"
    ).to_arrow(create_bqstorage_client=False))
    assert latest.height == 20
    assert latest[c.REVISION].to_list() == [1, 1, 1] + [0] * 17
    assert latest[c.CLOSE].head(3).to_list() == (base[c.CLOSE].head(3) + 5).to_list()
    views = f"{config.project}.{config.dataset}"
    quality = list(client.query(f"SELECT * FROM `{views}.data_quality` WHERE symbol = '{symbol}'").result())
    assert [(q["candles"], q["revised_candles"], q["revisions"]) for q in quality] == [(20, 3, 3)]
    latency = list(client.query(f"SELECT * FROM `{views}.ingest_latency` WHERE symbol = '{symbol}'").result())
    assert sum(r["candles"] for r in latency) == 22 and latency[0]["latency_p50_ms"] == pytest.approx(150.0)
    for view in ("features", "daily_summary", "quarantine_summary", "candles_15s", "candles_1d"):
        list(client.query(f"SELECT * FROM `{config.project}.{config.dataset}.{view}` LIMIT 1").result())


def test_verify_read_back_returns_what_was_written_and_catches_a_corrupted_row(config):
    btc, eth = unique_symbol(), unique_symbol()
    sink = BigQuerySink(config, mode="backfill")
    written = pl.concat([candles(btc, count=30), candles(eth, count=30, price=260.0)])
    sink.write_day("binance-futures", btc, "2020-02-22", {CANDLES: written.filter(pl.col(c.SYMBOL) == btc)})
    sink.write_day("binance-futures", eth, "2020-02-22", {CANDLES: written.filter(pl.col(c.SYMBOL) == eth)})
    window = (datetime(2020, 2, 22, tzinfo=timezone.utc), datetime(2020, 2, 23, tzinfo=timezone.utc))

    back = read_candles(config, [btc, eth], *window)
    key = list(c.CANDLE_KEY)
    assert back.schema == pl.Schema(s.CANDLE_SCHEMA)
    assert back.sort(key).equals(written.sort(key))
    assert read_candles(config, [btc], *window).height == 30

    rest_client(config).query(
        f"UPDATE `{config.table_id(CANDLES)}` SET close = close * 1.01 "
        f"WHERE symbol = '{eth}' AND timestamp_in = TIMESTAMP '2020-02-22 00:07:00+00'").result()
    diff = (read_candles(config, [btc, eth], *window)
            .join(written, on=key, suffix="_local").filter(pl.col(c.CLOSE) != pl.col(f"{c.CLOSE}_local")))
    assert diff.select(c.SYMBOL, c.TIMESTAMP_IN).rows() == [(eth, datetime(2020, 2, 22, 0, 7, tzinfo=timezone.utc))]
