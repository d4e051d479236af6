"""`mdstream backfill` of Tardis days through the real tardis-dev client and a local server in Tardis's layout."""

from __future__ import annotations

import gzip
import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from mdstream.cli import main
from mdstream.contract import columns as c
from support.tardis_http import TardisServer

TRADES = "tardis/binance-futures_trades_2020-02-22_BTCUSDT.first9999rows.csv"
US_PER_DAY = 86_400_000_000


@pytest.fixture
def two_days(real_data: Path, tardis_server: TardisServer) -> TardisServer:
    """2020-02-22 as recorded and a 2020-02-23 made of the same trades one day later (ids continuing)."""
    first = pl.read_csv(real_data / TRADES, schema_overrides={c.ID: pl.String})
    second = first.with_columns(
        pl.col(c.TIMESTAMP) + US_PER_DAY, pl.col(c.LOCAL_TIMESTAMP) + US_PER_DAY,
        (pl.col(c.ID).cast(pl.Int64) + 10_000).cast(pl.String),
    )
    for day, frame in ((date(2020, 2, 22), first), (date(2020, 2, 23), second)):
        tardis_server.add("binance-futures", "BTCUSDT", day, gzip.compress(frame.write_csv().encode()))
    return tardis_server


def _backfill(runner, server, tmp_path, *extra):
    env = {"TARDIS_API_KEY": "test-key", "MDSTREAM_TARDIS_ENDPOINT": server.endpoint}
    args = ["backfill", "--exchange", "binance-futures", "--symbols", "BTCUSDT", "--from", "2020-02-22",
            "--to", "2020-02-24", "--cache-dir", str(tmp_path / "cache"), "--timeframes", "1m,1d", *extra]
    result = runner.invoke(main, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def _rows(runner, db, sql):
    out = runner.invoke(main, ["query", "--duckdb", str(db), "--format", "json", sql])
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


def test_tardis_days_download_once_and_form_one_grid(two_days, tmp_path):
    runner = CliRunner()
    db = tmp_path / "x.duckdb"
    result = _backfill(runner, two_days, tmp_path, "--duckdb", str(db), "--quiet")
    assert "19,998 ticks read" in result.output
    _backfill(runner, two_days, tmp_path, "--duckdb", str(db), "--quiet")  # a re-run reads the cache
    assert len(two_days.requests) == 2
    days = _rows(runner, db, "SELECT strftime(timestamp_in, '%Y-%m-%d') AS d, trades FROM candles_1d ORDER BY 1")
    assert days == [{"d": "2020-02-22", "trades": 9999}, {"d": "2020-02-23", "trades": 9999}]
    grid = _rows(runner, db, "SELECT count(*)::BIGINT AS n, count(DISTINCT timestamp_in)::BIGINT AS k, "
                             "min(timestamp_in)::VARCHAR AS lo, max(timestamp_in)::VARCHAR AS hi FROM candles_1m")[0]
    # From the first trade's minute to the end of the range, no hole and no duplicate, across midnight.
    assert grid["n"] == grid["k"] == 2 * 1440
    assert grid["lo"].startswith("2020-02-22 00:00") and grid["hi"].startswith("2020-02-23 23:59")


def test_shards_split_the_date_symbol_tasks_without_overlap(two_days, tmp_path):
    runner = CliRunner()
    seen = []
    for index in (0, 1):
        db = tmp_path / f"shard{index}.duckdb"
        _backfill(runner, two_days, tmp_path, "--duckdb", str(db), "--quiet", "--shard", f"{index}/2")
        if db.exists():
            seen += [r["d"] for r in _rows(runner, db, "SELECT DISTINCT strftime(timestamp_in, '%Y-%m-%d') AS d FROM candles_1d")]
    assert sorted(seen) == ["2020-02-22", "2020-02-23"]


def test_a_failed_download_ahead_stops_after_the_days_before_it(real_data, tardis_server, tmp_path):
    """The next day downloads while the current one is computed; its failure still surfaces at that day,
    after every earlier day was written."""
    first = pl.read_csv(real_data / TRADES, schema_overrides={c.ID: pl.String})
    tardis_server.add("binance-futures", "BTCUSDT", date(2020, 2, 22), gzip.compress(first.write_csv().encode()))
    runner = CliRunner()
    db = tmp_path / "x.duckdb"
    env = {"TARDIS_API_KEY": "test-key", "MDSTREAM_TARDIS_ENDPOINT": tardis_server.endpoint}
    args = ["backfill", "--exchange", "binance-futures", "--symbols", "BTCUSDT", "--from", "2020-02-22",
            "--to", "2020-02-24", "--cache-dir", str(tmp_path / "cache"), "--timeframes", "1d", "--duckdb", str(db),
            "--quiet"]
    result = runner.invoke(main, args, env=env)
    assert result.exit_code != 0 and "2020-02-23" in result.output, result.output
    assert "Traceback" not in result.output
    days = _rows(runner, db, "SELECT strftime(timestamp_in, '%Y-%m-%d') AS d, trades FROM candles_1d ORDER BY 1")
    assert days == [{"d": "2020-02-22", "trades": 9999}]
