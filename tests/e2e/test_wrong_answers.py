"""Quiet wrong answers made loud: wrong-case symbols, a range excluding every row, a truncated input, an offline
Tardis backfill, an empty file left behind, the quarantine's day, trade ids repeated across days."""

from __future__ import annotations

import gzip
import json
import time
from datetime import date

import polars as pl
from click.testing import CliRunner

from mdstream.cli import main
from support.cli_run import assert_one_line_error, mdstream
from support.day_files import day_file

D1, D2 = date(2024, 1, 1), date(2024, 1, 2)


def rows(db, sql: str) -> list[dict]:
    """Rows of `sql` through `mdstream query`."""
    result = CliRunner().invoke(main, ["query", "--duckdb", str(db), "--format", "json", sql])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def tardis(server, tmp_path, *args: str, **extra: str):
    """`mdstream backfill` of Tardis days from the local server (subprocess)."""
    return mdstream("backfill", "--exchange", "binance-futures", "--cache-dir", str(tmp_path / "cache"),
                    "--duckdb", str(tmp_path / "m.duckdb"), *args, MDSTREAM_TARDIS_ENDPOINT=server.endpoint,
                    TARDIS_API_KEY="test-key", NO_PROXY="127.0.0.1", **extra)


def test_lower_case_symbols_are_the_venue_symbols(tardis_server, tmp_path):
    tardis_server.add("binance-futures", "BTCUSDT", D1, day_file(tmp_path / "in", D1, n=1_000).read_bytes())
    run = tardis(tardis_server, tmp_path, "--symbols", "btcusdt", "--from", "2024-01-01", "--to", "2024-01-02",
                 "--timeframes", "1d")
    assert run.code == 0, run.text
    assert rows(tmp_path / "m.duckdb", "SELECT symbol, trades FROM candles_1d") == [{"symbol": "BTCUSDT", "trades": 1_000}]


def test_synthetic_stream_stores_the_symbols_upper_case(tmp_path):
    db = tmp_path / "s.duckdb"
    run = mdstream("stream", "--source", "synthetic", "--symbols", "btcusdt,ethusdt", "--duration", "3",
                   "--lateness", "0", "--timeframes", "15s", "--mode", "ticks", "--quiet", "--duckdb", str(db))
    assert run.code == 0, run.text
    assert {r["symbol"] for r in rows(db, "SELECT DISTINCT symbol FROM ticks")} == {"BTCUSDT", "ETHUSDT"}


def test_symbols_that_cannot_be_symbols_are_refused(tmp_path):
    result = CliRunner().invoke(main, ["backfill", "--input", str(day_file(tmp_path, D1, n=100)),
                                       "--symbols", "BTC'; DROP TABLE candles; --", "--duckdb", str(tmp_path / "m.duckdb")])
    assert result.exit_code == 2 and "invalid symbol" in result.output, result.output
    assert not (tmp_path / "m.duckdb").exists()


def test_a_range_that_excludes_every_row_is_an_error_naming_it(tmp_path):
    path = day_file(tmp_path / "in", D1, n=1_000)
    run = mdstream("backfill", "--input", str(path), "--from", "2024-02-01", "--to", "2024-02-02",
                   "--duckdb", str(tmp_path / "m.duckdb"))
    assert_one_line_error(run, "--from 2024-02-01 --to 2024-02-02", "2024-01-01", "1,000 trades")
    assert not (tmp_path / "m.duckdb").exists()  # no empty database left behind


def test_symbols_not_in_the_input_is_an_error_naming_what_it_holds(tmp_path):
    path = day_file(tmp_path / "in", D1, n=1_000)
    run = mdstream("backfill", "--input", str(path), "--symbols", "ETHUSDT", "--duckdb", str(tmp_path / "m.duckdb"))
    assert_one_line_error(run, "no trades of ETHUSDT", "BTCUSDT")


def test_a_truncated_input_keeps_the_valid_part_and_exits_3(tmp_path):
    whole = day_file(tmp_path / "in", D1, n=50_000).read_bytes()
    path = tmp_path / "cut" / "binance-futures_trades_2024-01-01_BTCUSDT.csv.gz"
    path.parent.mkdir()
    path.write_bytes(whole[: len(whole) // 2])
    db = tmp_path / "m.duckdb"
    run = mdstream("backfill", "--input", str(path), "--duckdb", str(db), "--timeframes", "1m")
    assert_one_line_error(run, "finished with data gaps", str(path), code=3)
    stored = rows(db, "SELECT sum(trades)::BIGINT AS n, count(*) FILTER (WHERE gap = 'feed') AS feed FROM candles_1m")[0]
    assert 0 < stored["n"] < 50_000 and stored["feed"] > 0


def test_a_truncated_cached_download_is_fetched_again(tardis_server, tmp_path):
    body = day_file(tmp_path / "in", D1, n=20_000).read_bytes()
    path = tardis_server.add("binance-futures", "BTCUSDT", D1, body)
    cached = tmp_path / "cache" / "binance-futures_trades_2024-01-01_BTCUSDT.csv.gz"
    cached.parent.mkdir()
    cached.write_bytes(body[: len(body) // 3])  # a copy cut short, from an earlier run
    run = tardis(tardis_server, tmp_path, "--symbols", "BTCUSDT", "--from", "2024-01-01", "--to", "2024-01-02",
                 "--timeframes", "1d")
    assert run.code == 0, run.text
    assert tardis_server.hits(path) == 1 and cached.read_bytes() == body
    assert rows(tmp_path / "m.duckdb", "SELECT trades FROM candles_1d") == [{"trades": 20_000}]


def test_an_offline_tardis_backfill_gives_up_after_the_download_timeout(tmp_path):
    began = time.monotonic()
    run = mdstream("backfill", "--exchange", "binance-futures", "--symbols", "BTCUSDT", "--from", "2024-01-01",
                   "--to", "2024-01-02", "--cache-dir", str(tmp_path / "cache"), "--download-timeout", "3",
                   "--duckdb", str(tmp_path / "m.duckdb"),
                   MDSTREAM_TARDIS_ENDPOINT="http://127.0.0.1:9/v1", NO_PROXY="127.0.0.1")
    assert time.monotonic() - began < 20
    assert_one_line_error(run, "no data from http://127.0.0.1:9/v1 for 3s", "--download-timeout")
    assert "retrying" in run.err  # what it was doing meanwhile was visible
    assert not (tmp_path / "m.duckdb").exists()


def test_a_failed_command_leaves_no_empty_database(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("not,a,tardis,header\n1,2,3,4\n")
    run = mdstream("backfill", "--input", str(bad), "--duckdb", str(tmp_path / "m.duckdb"))
    assert_one_line_error(run, str(bad), "unexpected header")
    assert not (tmp_path / "m.duckdb").exists()
    assert_one_line_error(mdstream("query", "--duckdb", str(tmp_path / "m.duckdb"), "SELECT 1"), "does not exist")


def test_quarantine_summary_day_is_the_data_day(tmp_path):
    frame = pl.read_csv(day_file(tmp_path / "in", D1, n=500, gz=False), infer_schema=False)
    frame = frame.with_columns(pl.when(pl.int_range(pl.len()) < 3).then(pl.lit("-1")).otherwise(pl.col("price")).alias("price"))
    path = tmp_path / "binance-futures_trades_2024-01-01_BTCUSDT.csv"
    frame.write_csv(path)
    db = tmp_path / "m.duckdb"
    assert mdstream("backfill", "--input", str(path), "--duckdb", str(db), "--quiet").code == 0
    assert rows(db, "SELECT day::VARCHAR AS day, rows FROM quarantine_summary") == [{"day": "2024-01-01", "rows": 3}]


def test_trade_ids_repeated_on_another_day_are_other_trades(tmp_path):
    # A venue that restarts its ids: both days' trades count; none is dropped as a duplicate.
    paths = [day_file(tmp_path / "in", d, n=1_000, first_id=1) for d in (D1, D2)]
    db = tmp_path / "m.duckdb"
    run = mdstream("backfill", *[f for p in paths for f in ("--input", str(p))], "--duckdb", str(db), "--store-ticks")
    assert run.code == 0, run.text
    assert "0 duplicate ids" in run.out and "2,000 ticks read" in run.out
    assert rows(db, "SELECT count(*) AS n FROM ticks") == [{"n": 2_000}]


def test_the_same_trade_in_two_files_of_one_day_counts_once(tmp_path):
    one = day_file(tmp_path / "a", D1, n=1_000)
    part = tmp_path / "b" / one.name
    part.parent.mkdir()
    lines = gzip.decompress(one.read_bytes()).decode().splitlines(keepends=True)
    part.write_bytes(gzip.compress("".join(lines[:1] + lines[-300:]).encode()))  # the day's last 300 trades again
    run = mdstream("backfill", "--input", str(one), "--input", str(part), "--duckdb", str(tmp_path / "m.duckdb"))
    assert run.code == 0, run.text
    assert "300 duplicate ids" in run.out and "1,000 ticks read" in run.out
