"""A finished backfill ends its process without the interpreter's teardown: nothing it printed or wrote is lost."""

from __future__ import annotations

import json
import subprocess
import sys

import duckdb
import pytest

from mdstream.inputs.sample import trades_day, write_csv_gz
from support.cli_run import MDSTREAM, env


@pytest.mark.parametrize("program", [[MDSTREAM], [sys.executable, "-m", "mdstream"]], ids=["script", "module"])
def test_a_finished_backfill_delivers_its_output_to_a_pipe_and_a_whole_file(tmp_path, program):
    """Output block-buffered into a pipe (no PYTHONUNBUFFERED) still arrives whole, the exit status is 0, and the
    DuckDB file is checkpointed (no write-ahead log left) with every candle."""
    path = write_csv_gz(trades_day(5_000), tmp_path / "binance-futures_trades_2024-01-01_BTCUSDT.csv.gz")
    db = tmp_path / "m.duckdb"
    buffered = {k: v for k, v in env().items() if k != "PYTHONUNBUFFERED"}
    done = subprocess.run([*program, "backfill", "--input", str(path), "--duckdb", str(db)], env=buffered,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "5,000 ticks read" in done.stdout, done.stdout
    assert not db.with_name(db.name + ".wal").exists()
    with duckdb.connect(str(db), read_only=True) as con:
        written = con.sql("SELECT count(*) FROM candles").fetchall()[0][0]
    assert written > 0 and f"{written:,} candles written" in done.stdout, done.stdout


def test_a_failed_backfill_still_ends_with_its_one_line_error(tmp_path):
    """Only a finished command skips the teardown: a failure keeps its message and exit status."""
    bad = tmp_path / "binance-futures_trades_2024-01-01_BTCUSDT.csv"
    bad.write_text("not,a,tardis,header\n")
    done = subprocess.run([MDSTREAM, "backfill", "--input", str(bad), "--duckdb", str(tmp_path / "m.duckdb")],
                          env={k: v for k, v in env().items() if k != "PYTHONUNBUFFERED"}, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1 and f"{bad}:1:" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_finished_replay_delivers_its_summary_candles_and_checkpoint(tmp_path):
    """A stream that ends (its replayed input does) ends its process the same way: the summary arrives whole
    through a pipe, the DuckDB file holds the candles with no write-ahead log left, the progress file is
    written, and the metrics server it ran is gone with it."""
    path = write_csv_gz(trades_day(5_000), tmp_path / "binance-futures_trades_2024-01-01_BTCUSDT.csv.gz")
    db, progress = tmp_path / "r.duckdb", tmp_path / "progress.json"
    done = subprocess.run([MDSTREAM, "stream", "--source", "replay", "--input", str(path), "--speed", "0", "--quiet",
                           "--duckdb", str(db), "--checkpoint", str(progress), "--metrics-port", "0"],
                          env={k: v for k, v in env().items() if k != "PYTHONUNBUFFERED"}, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not db.with_name(db.name + ".wal").exists()
    with duckdb.connect(str(db), read_only=True) as con:
        written = con.sql("SELECT count(*) FROM candles").fetchall()[0][0]
    assert written > 0 and f"{written:,} candles written" in done.stdout, done.stdout
    totals = json.loads(progress.read_text())["totals"]
    assert (totals["ticks"], totals["received"], totals["rows_written"]) == (5_000, 5_000, written), totals
