"""BigQuery: a candles table of the previous contract gains base_volume in place, keeps its rows, and the views
show the volume rule; inverse candles written through the sink read back and verify."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone

import polars as pl
import pytest

from mdstream.contract import columns as c
from mdstream.contract.clock import ManualClock
from mdstream.contract.instruments import builtin
from mdstream.inputs.sample import write_csv_gz
from mdstream.jobs.backfill import BackfillOptions, run_backfill
from mdstream.ops.verify_bigquery import verify_bigquery
from mdstream.sinks.base import CANDLES
from mdstream.sinks.bigquery import BigQuerySink, read_candles
from mdstream.sinks.bigquery.config import rest_client
from mdstream.sinks.bigquery.schema import TABLES, schema_fields
from support.bq_emulator import candles, config_for
from support.contracts import as_ticks, contract_trades

pytestmark = pytest.mark.bigquery
NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)


def test_previous_candles_table_gains_base_volume_and_keeps_its_rows(bq_emulator, tmp_path):
    config = config_for(bq_emulator, tmp_path, f"t_{uuid.uuid4().hex[:10]}")
    client = rest_client(config)
    from google.cloud import bigquery

    # The table as the previous release created it (no base_volume), holding two rows.
    client.create_dataset(bigquery.Dataset(f"{config.project}.{config.dataset}"))
    old_fields = [f for f in schema_fields(TABLES[CANDLES]) if f.name != c.BASE_VOLUME]
    client.create_table(bigquery.Table(config.table_id(CANDLES), schema=old_fields))
    client.query(
        f"INSERT INTO `{config.table_id(CANDLES)}` (exchange, symbol, timeframe, timestamp_in, revision, close, volume, "
        "quote_volume, vwap) VALUES "
        "('binance-futures', 'OLDUSDT', '1m', TIMESTAMP '2020-02-22 00:00:00+00', 0, 9700.5, 2.0, 19401.0, 9700.5), "
        "('binance-futures', 'OLDUSDT', '1m', TIMESTAMP '2020-02-22 00:01:00+00', 0, 9701.0, 1.0, 9701.0, 9701.0)"
    ).result()

    sink = BigQuerySink(config, mode="stream")
    new = candles("NEWUSDT", count=3).with_columns((pl.col(c.VOLUME) / 2).alias(c.BASE_VOLUME))
    sink.write(CANDLES, new)
    sink.flush()
    sink.close()

    table = client.get_table(config.table_id(CANDLES))
    assert c.BASE_VOLUME in [f.name for f in table.schema]
    raw = {(r["symbol"], r["close"]): r["base_volume"]
           for r in client.query(f"SELECT symbol, close, base_volume FROM `{config.table_id(CANDLES)}`").result()}
    assert raw[("OLDUSDT", 9700.5)] is None and len(raw) == 5  # old rows kept, their new column null
    old = read_candles(config, ["OLDUSDT"], "2020-02-22", "2020-02-23")
    assert old.select(c.CLOSE, c.VOLUME, c.BASE_VOLUME).rows() == [(9700.5, 2.0, 2.0), (9701.0, 1.0, 1.0)]
    written = read_candles(config, ["NEWUSDT"], "2020-02-22", "2020-02-23").sort(c.TIMESTAMP_IN)
    assert written[c.BASE_VOLUME].to_list() == (new[c.VOLUME] / 2).to_list()
    daily = list(client.query(f"SELECT COUNT(base_volume) AS n FROM `{config.project}.{config.dataset}.daily_summary`").result())
    assert daily[0]["n"] == 0  # no 1d rows here, but the view has the column


def test_inverse_backfill_to_bigquery_reads_back_and_verifies(bq_emulator, bq_dataset, tmp_path):
    config = config_for(bq_emulator, tmp_path, bq_dataset)
    symbol = f"T{uuid.uuid4().hex[:6].upper()}USD_PERP"  # its own series; a COIN-M name: 10 USD contracts
    frame = contract_trades(1_500, day=date(2024, 8, 8), exchange="binance-delivery", symbol=symbol, price=2_600.0,
                            tick=0.01, seed=12)
    path = write_csv_gz(frame, tmp_path / f"binance-delivery_trades_2024-08-08_{symbol}.csv.gz")
    sink = BigQuerySink(config, mode="backfill")
    try:
        run_backfill(BackfillOptions(inputs=(path,), store_ticks=True, timeframes=("1m", "1d")), sink, ManualClock(NOW))
    finally:
        sink.close()
    assert builtin("binance-delivery", symbol).contract_size == 10.0
    day = read_candles(config, [symbol], "2024-08-08", "2024-08-09").filter(pl.col(c.TIMEFRAME) == "1d").row(0, named=True)
    ticks = as_ticks(frame)
    assert day[c.QUOTE_VOLUME] == ticks[c.AMOUNT].sum() * 10
    assert day[c.BASE_VOLUME] == pytest.approx((ticks[c.AMOUNT] * 10 / ticks[c.PRICE]).sum(), rel=1e-12)
    report = verify_bigquery(config, symbols=[symbol], from_=datetime(2024, 8, 8, tzinfo=timezone.utc),
                             to=datetime(2024, 8, 9, tzinfo=timezone.utc))
    assert report.ok, report.lines()
