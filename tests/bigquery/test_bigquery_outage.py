"""BigQuery going away mid-run: batches wait in the spool and arrive once, in order, after it comes back."""

from __future__ import annotations

import time

import pytest

from mdstream.sinks.base import CANDLES
from mdstream.sinks.bigquery import BigQuerySink
from mdstream.sinks.bigquery.config import rest_client
from support.bq_emulator import candles, config_for, unique_symbol

pytestmark = pytest.mark.bigquery


def rows(config, symbol: str) -> list[tuple]:
    """(timestamp_in, revision) of every stored candle row of `symbol`, duplicates included."""
    sql = (f"SELECT timestamp_in, revision FROM `{config.table_id(CANDLES)}` WHERE symbol = '{symbol}' "
           "ORDER BY timestamp_in, revision")
    return [(r["timestamp_in"], r["revision"]) for r in rest_client(config).query(sql).result()]


@pytest.mark.slow
def test_spool_survives_an_outage_and_a_crash_without_loss_or_duplicates(bq_emulator, bq_dataset, tmp_path):
    config = config_for(bq_emulator, tmp_path, bq_dataset, timeout_seconds=3.0)
    symbol = unique_symbol()
    batches = [candles(symbol, count=40, start=f"2020-02-22T0{i}:00:00") for i in range(5)]
    expected = sorted((t, 0) for b in batches for t in b["timestamp_in"].to_list())

    sink = BigQuerySink(config, mode="stream")
    sink.write(CANDLES, batches[0])
    sink.flush()
    assert sink.state()["spooled_batches"] == 0

    bq_emulator.stop()
    try:
        for batch in batches[1:3]:
            began = time.monotonic()
            sink.write(CANDLES, batch)
            sink.flush()  # the stream keeps going: no exception, no long wait
            assert time.monotonic() - began < config.timeout_seconds + 1
        assert sink.state()["spooled_batches"] == 2
    finally:
        bq_emulator.start()  # the emulator forgets its write streams, as after a real outage

    # In-process recovery: closing drains the spool in order (to a new stream: the old one is gone).
    sink.close()
    assert sink.state()["spooled_batches"] == 0
    assert rows(config, symbol) == sorted(expected[:120])

    # A crash while down: the next process finds the spool on disk and delivers it before new data.
    sink = BigQuerySink(config, mode="stream")
    sink.write(CANDLES, batches[3])
    sink.flush()
    bq_emulator.stop()
    try:
        sink.write(CANDLES, batches[4])
        sink.flush()
        assert sink.state()["spooled_batches"] == 1
        del sink  # crashed: never closed
    finally:
        bq_emulator.start()
    restarted = BigQuerySink(config, mode="stream")
    assert restarted.state()["spooled_batches"] == 1
    restarted.flush()
    assert restarted.state()["spooled_batches"] == 0
    assert rows(config, symbol) == expected
    assert restarted.stats.rows[CANDLES] == 40
