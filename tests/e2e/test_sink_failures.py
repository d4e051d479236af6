"""Sinks that fail cleanly and never half-apply, through the CLI: a full disk under each sink and job (earlier
data survives, nothing half visible, no temp files, one line naming the cause), and a DuckDB file held by
another process (a stream keeps its rows and retries; a backfill waits for it)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import date

import pytest

from mdstream.sinks.parquet import read_candles
from support.cli_run import assert_one_line_error, mdstream, start
from support.day_files import day_file
from support.small_disk import fill, small_disk

D1, D2 = date(2024, 1, 1), date(2024, 1, 2)


def duckdb_days(db) -> dict[str, int]:
    """Trades per day in the 1d candles of a DuckDB file."""
    got = mdstream("query", "--duckdb", str(db), "--format", "json",
                   "SELECT strftime(timestamp_in, '%Y-%m-%d') AS d, trades FROM candles_1d ORDER BY 1")
    assert got.code == 0, got.text
    return {row["d"]: row["trades"] for row in json.loads(got.out)}


def parquet_days(root) -> dict[str, int]:
    """Trades per day in the 1d candles of a Parquet tree."""
    daily = read_candles(root).filter(timeframe="1d").collect()
    return {str(d): n for d, n in zip(daily["timestamp_in"].dt.date(), daily["trades"])}


def leftovers(folder) -> list[str]:
    """Temporary or staging files anywhere under `folder`."""
    return [str(p) for p in folder.rglob("*") if p.name.endswith((".tmp", ".unconfirmed")) or ".staging" in p.parts]


def test_duckdb_backfill_on_a_full_disk(tmp_path):
    small = day_file(tmp_path / "in", D1, n=5_000)
    big = day_file(tmp_path / "in", D2, n=300_000)
    with small_disk(tmp_path / "disk", "3m") as disk:
        db = disk / "m.duckdb"
        assert mdstream("backfill", "--input", str(small), "--duckdb", str(db), "--quiet", "--timeframes", "1m,1d").code == 0
        run = mdstream("backfill", "--input", str(big), "--duckdb", str(db), "--quiet", "--store-ticks")
        assert_one_line_error(run, "disk full", str(db))
        assert "No space left on device" in run.err
        assert duckdb_days(db) == {"2024-01-01": 5_000}  # the earlier day survives, nothing of the failed one


def test_parquet_backfill_on_a_full_disk(tmp_path):
    small = day_file(tmp_path / "in", D1, n=5_000)
    big = day_file(tmp_path / "in", D2, n=300_000)
    with small_disk(tmp_path / "disk", "3m") as disk:
        root = disk / "pq"
        assert mdstream("backfill", "--input", str(small), "--sink", "parquet", "--parquet", str(root), "--quiet",
                        "--store-ticks").code == 0
        before = sorted(str(p) for p in root.rglob("*.parquet"))
        run = mdstream("backfill", "--input", str(big), "--sink", "parquet", "--parquet", str(root), "--quiet",
                       "--store-ticks")
        assert_one_line_error(run, "disk full", "nothing applied")
        # Nothing of the failed day is visible (no candle file without its ticks), nothing temporary is left.
        assert sorted(str(p) for p in root.rglob("*.parquet")) == before
        assert leftovers(root) == []
        assert parquet_days(root) == {"2024-01-01": 5_000}


@pytest.mark.parametrize("sink", ["duckdb", "parquet"])
def test_stream_on_a_full_disk_fails_in_one_line_and_keeps_earlier_data(sink, tmp_path):
    first = day_file(tmp_path / "in", D1, n=5_000)
    second = day_file(tmp_path / "in", D2, n=20_000, span_s=1_800)
    with small_disk(tmp_path / "disk", "4m") as disk:
        target = ["--duckdb", str(disk / "m.duckdb")] if sink == "duckdb" else ["--parquet", str(disk / "pq")]
        assert mdstream("backfill", "--input", str(first), "--sink", sink, *target, "--quiet").code == 0
        fill(disk)
        run = mdstream("stream", "--source", "replay", "--input", str(second), "--speed", "0", "--quiet",
                       "--sink", sink, *target, timeout=120)
        # It kept the rows and retried while it ran, then says in one line what could not be written and why.
        assert_one_line_error(run, "disk full")
        (disk / "filler").unlink()
        days = duckdb_days(disk / "m.duckdb") if sink == "duckdb" else parquet_days(disk / "pq")
        assert days == {"2024-01-01": 5_000}
        assert leftovers(disk) == []


def test_tardis_download_into_a_full_cache(tardis_server, tmp_path):
    body = day_file(tmp_path / "in", D1, n=100_000).read_bytes()
    tardis_server.add("binance-futures", "BTCUSDT", D1, body)
    with small_disk(tmp_path / "disk", "1m") as disk:
        run = mdstream("backfill", "--exchange", "binance-futures", "--symbols", "BTCUSDT", "--from", "2024-01-01",
                       "--to", "2024-01-02", "--cache-dir", str(disk / "cache"), "--download-timeout", "2",
                       "--duckdb", str(tmp_path / "m.duckdb"), MDSTREAM_TARDIS_ENDPOINT=tardis_server.endpoint,
                       TARDIS_API_KEY="test-key", NO_PROXY="127.0.0.1")
        assert_one_line_error(run, "No space left on device")
        assert leftovers(disk) == []
    assert not (tmp_path / "m.duckdb").exists()


HOLD = """
import duckdb, sys, time
con = duckdb.connect(sys.argv[1], read_only=True)
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def hold(db, seconds: float) -> subprocess.Popen:
    """Another process holding `db` open for `seconds` (returns once it holds it)."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(db), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "holding"
    return process


def test_a_reader_holding_the_file_does_not_kill_the_stream(tmp_path):
    db = tmp_path / "m.duckdb"
    first, second = day_file(tmp_path / "in", D1), day_file(tmp_path / "in", D2, n=1_000, span_s=600)
    assert mdstream("backfill", "--input", str(first), "--duckdb", str(db), "--quiet").code == 0
    reader = hold(db, 3)
    began = time.monotonic()
    run = mdstream("stream", "--source", "replay", "--input", str(second), "--speed", "0", "--quiet",
                   "--duckdb", str(db), timeout=120)
    reader.wait()
    assert run.code == 0, run.text
    assert time.monotonic() - began >= 2.5  # it waited for the reader, keeping its rows
    assert "locked by another process" in run.err and "Traceback" not in run.text
    assert duckdb_days(db) == {"2024-01-01": 5_000, "2024-01-02": 1_000}


def test_a_backfill_waits_for_a_short_reader(tmp_path):
    db = tmp_path / "m.duckdb"
    first, second = day_file(tmp_path / "in", D1), day_file(tmp_path / "in", D2)
    assert mdstream("backfill", "--input", str(first), "--duckdb", str(db), "--quiet").code == 0
    reader = hold(db, 3)
    run = mdstream("backfill", "--input", str(second), "--duckdb", str(db), "--quiet")
    reader.wait()
    assert run.code == 0, run.text
    assert duckdb_days(db) == {"2024-01-01": 5_000, "2024-01-02": 5_000}


@pytest.mark.slow
def test_a_backfill_gives_up_on_a_long_reader_in_one_line(tmp_path):
    db = tmp_path / "m.duckdb"
    first, second = day_file(tmp_path / "in", D1), day_file(tmp_path / "in", D2)
    assert mdstream("backfill", "--input", str(first), "--duckdb", str(db), "--quiet").code == 0
    reader = hold(db, 15)
    run = mdstream("backfill", "--input", str(second), "--duckdb", str(db), "--quiet")
    reader.wait()
    assert_one_line_error(run, "locked by another process", "PID")
    assert duckdb_days(db) == {"2024-01-01": 5_000}


@pytest.mark.parametrize("sink", ["duckdb", "parquet"])
def test_a_read_only_file_system_is_named_in_one_line(sink, tmp_path):
    path = day_file(tmp_path / "in", D1, n=1_000)
    with small_disk(tmp_path / "ro", "1m", "ro") as disk:
        target = ["--duckdb", str(disk / "m.duckdb")] if sink == "duckdb" else ["--parquet", str(disk / "pq")]
        run = mdstream("backfill", "--input", str(path), "--sink", sink, *target, "--quiet")
        assert_one_line_error(run, "read-only file system")


@pytest.mark.slow
def test_a_backfill_and_a_stream_write_the_same_file(tmp_path):
    db = tmp_path / "m.duckdb"
    stream = start("stream", "--source", "synthetic", "--duration", "8", "--mode", "ticks", "--quiet", "--duckdb", str(db))
    time.sleep(3)
    run = mdstream("backfill", "--input", str(day_file(tmp_path / "in", D1)), "--duckdb", str(db), "--quiet")
    out, err = stream.communicate(timeout=60)
    assert run.code == 0, run.text
    assert stream.returncode == 0 and "Traceback" not in out + err, out + err
    assert duckdb_days(db) == {"2024-01-01": 5_000}
    got = mdstream("query", "--duckdb", str(db), "--format", "json", "SELECT count(DISTINCT symbol) AS n FROM ticks")
    assert json.loads(got.out)[0]["n"] == 3  # the synthetic market's symbols, all stored


@pytest.mark.slow
def test_rows_a_stream_could_not_write_wait_in_the_spool_for_the_next_run(tmp_path):
    db = tmp_path / "m.duckdb"
    first = start("stream", "--source", "synthetic", "--duration", "8", "--mode", "ticks", "--quiet", "--duckdb", str(db))
    time.sleep(3)
    reader = hold(db, 25)  # longer than the stream's end plus its patience at close
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, out + err
    assert "written first by the next run" in err, err
    spooled = int(re.search(r"([\d,]+) rows kept in", err)[1].replace(",", ""))
    assert spooled > 0 and any(db.with_name(db.name + ".spool").iterdir())
    reader.wait()
    second = mdstream("stream", "--source", "synthetic", "--duration", "3", "--mode", "ticks", "--quiet",
                      "--duckdb", str(db), "--seed", "1")
    assert second.code == 0, second.text
    ticks = [int(n.replace(",", "")) for n in re.findall(r"ticks\s+│\s+([\d,]+)", out + second.out)]
    got = mdstream("query", "--duckdb", str(db), "--format", "json", "SELECT count(*) AS n FROM ticks")
    assert json.loads(got.out)[0]["n"] == sum(ticks)  # nothing lost: the spool went in first
    assert not any(db.with_name(db.name + ".spool").iterdir())


@pytest.mark.slow
def test_a_reader_holding_the_file_longer_than_the_sinks_wait_at_start_delays_the_stream(tmp_path):
    """Longer than the sink's own wait (10 s): the stream waits before reading its feed (nothing taken in, so
    nothing to lose), says why once, then runs; every trade is written."""
    db = tmp_path / "m.duckdb"
    first, second = day_file(tmp_path / "in", D1), day_file(tmp_path / "in", D2, n=1_000, span_s=600)
    assert mdstream("backfill", "--input", str(first), "--duckdb", str(db), "--quiet").code == 0
    reader = hold(db, 13)
    began = time.monotonic()
    run = mdstream("stream", "--source", "replay", "--input", str(second), "--speed", "0", "--quiet",
                   "--duckdb", str(db), timeout=120)
    reader.wait()
    assert run.code == 0, run.text
    assert time.monotonic() - began >= 12
    assert "waiting for the sink" in run.text and "Traceback" not in run.text
    assert duckdb_days(db) == {"2024-01-01": 5_000, "2024-01-02": 1_000}
