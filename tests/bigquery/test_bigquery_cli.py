"""The CLI end to end against the BigQuery emulator: backfill --sink bigquery, re-run, verify --bigquery."""

from __future__ import annotations

import polars as pl
import pytest
from click.testing import CliRunner

from mdstream.cli import main
from mdstream.contract import columns as c
from support.bq_emulator import PROJECT, config_for, unique_symbol

pytestmark = pytest.mark.bigquery
TRADES = "tardis/binance-futures_trades_2020-02-22_BTCUSDT.first9999rows.csv"


def _flags(emulator, dataset: str) -> list[str]:
    return ["--bq-project", PROJECT, "--bq-dataset", dataset, "--bq-api-endpoint", emulator.endpoint,
            "--bq-write-endpoint", emulator.grpc]


def _count(config, symbol: str, relation: str) -> int:
    from mdstream.sinks.bigquery.config import rest_client

    client = rest_client(config)
    sql = f"SELECT COUNT(*) AS n FROM `{PROJECT}.{config.dataset}.{relation}` WHERE symbol = '{symbol}'"
    return list(client.query(sql).result())[0]["n"]


@pytest.mark.slow
def test_backfill_to_bigquery_rerun_and_verify(bq_emulator, bq_dataset, real_data, tmp_path, monkeypatch):
    monkeypatch.setenv("MDSTREAM_BQ_REQUEST_LIMIT_BYTES", str(3 * 1024 * 1024))
    monkeypatch.setenv("MDSTREAM_BQ_SPOOL_DIR", str(tmp_path / "spool"))
    symbol = unique_symbol()
    # 1,500 real trades (00:00-00:08 UTC) under a symbol of this test's own.
    trades = pl.read_csv(real_data / TRADES, schema_overrides={c.ID: pl.String}).head(1500)
    trades = trades.with_columns(pl.lit(symbol).alias(c.SYMBOL))
    path = tmp_path / f"binance-futures_trades_2020-02-22_{symbol}.csv"
    trades.write_csv(path)
    runner = CliRunner()
    backfill = ["backfill", "--input", str(path), "--store-ticks", "--sink", "bigquery", "--quiet",
                "--timeframes", "15s,1m,5m", *_flags(bq_emulator, bq_dataset)]
    first = runner.invoke(main, backfill, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    config = config_for(bq_emulator, tmp_path, bq_dataset)
    latest = _count(config, symbol, "candles_latest")
    assert latest == _count(config, symbol, "candles") > 0
    assert _count(config, symbol, "ticks") == 1500

    # Re-running the same day replaces it: readers never see two copies.
    again = runner.invoke(main, backfill, catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert _count(config, symbol, "candles") == latest and _count(config, symbol, "ticks") == 1500

    verify = ["verify", "--bigquery", "--symbols", symbol, "--from", "2020-02-22", "--to", "2020-02-23",
              *_flags(bq_emulator, bq_dataset)]
    ok = runner.invoke(main, verify, catch_exceptions=False)
    assert ok.exit_code == 0, ok.output
    assert "0 mismatches" in ok.output

    from mdstream.sinks.bigquery.config import rest_client

    rest_client(config).query(
        f"UPDATE `{PROJECT}.{bq_dataset}.candles` SET close = close + 1 WHERE symbol = '{symbol}' "
        "AND timeframe = '1m' AND timestamp_in = TIMESTAMP '2020-02-22 00:03:00+00'"
    ).result()
    bad = runner.invoke(main, verify, catch_exceptions=False)
    assert bad.exit_code == 1, bad.output
    assert "2020-02-22 00:03:00" in bad.output and "close" in bad.output


def test_stream_job_writes_candles_and_ticks_to_bigquery(bq_emulator, bq_dataset, real_data, tmp_path, monkeypatch):
    monkeypatch.setenv("MDSTREAM_BQ_REQUEST_LIMIT_BYTES", str(3 * 1024 * 1024))
    monkeypatch.setenv("MDSTREAM_BQ_SPOOL_DIR", str(tmp_path / "spool"))
    symbol = unique_symbol()
    trades = pl.read_csv(real_data / TRADES, schema_overrides={c.ID: pl.String}).head(1200)
    path = tmp_path / f"binance-futures_trades_2020-02-22_{symbol}.csv"
    trades.with_columns(pl.lit(symbol).alias(c.SYMBOL)).write_csv(path)
    result = CliRunner().invoke(main, ["stream", "--source", "replay", "--input", str(path), "--mode", "both",
                                       "--timeframes", "15s,1m", "--sink", "bigquery", "--quiet",
                                       *_flags(bq_emulator, bq_dataset)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "BigQuery:" in result.output and "rows streamed" in result.output  # the cost line of the summary
    config = config_for(bq_emulator, tmp_path, bq_dataset)
    assert _count(config, symbol, "ticks") == 1200
    latest = _count(config, symbol, "candles_latest")
    assert latest == _count(config, symbol, "candles") > 0
    from mdstream.sinks.bigquery.config import rest_client

    traded = list(rest_client(config).query(
        f"SELECT SUM(trades) AS n FROM `{PROJECT}.{bq_dataset}.candles_1m` WHERE symbol = '{symbol}'").result())[0]["n"]
    assert traded == 1200
