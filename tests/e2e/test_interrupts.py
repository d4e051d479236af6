"""Ctrl-C and SIGTERM in a backfill: whole days or nothing, the committed days named, exit 128 + signal, no fake
database error, no bare `Aborted!`; multi-file input is written day by day, so an interrupt keeps what is done."""

from __future__ import annotations

import json
import re
import signal
import time
from datetime import date

import pytest

from mdstream.sinks.parquet import read_candles
from support.blackhole import blackhole
from support.cli_run import Run, mdstream, start
from support.day_files import day_files

N = 150_000  # trades per day: enough that a day takes a moment to read and compute


def interrupt_after_first_day(args: list[str], sig: int = signal.SIGINT) -> Run:
    """Start a backfill, send `sig` as soon as its first day is reported committed, wait for it to end."""
    process = start(*args)
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if " ticks -> " in line:
            process.send_signal(sig)
            break
    out, err = process.communicate(timeout=120)
    return Run(process.returncode, "".join(lines) + out, err)


def committed(run: Run) -> list[str]:
    """Days the error line names as committed."""
    found = re.search(r"days committed \(([^)]*)\)", run.err)
    return [part.split()[-1] for part in found[1].split(", ")] if found else []


def check_clean_interrupt(run: Run, code: int) -> list[str]:
    """Exit status and one clean line; the days it names."""
    assert run.code == code, run.text
    assert "Traceback" not in run.text and "Aborted!" not in run.text, run.text
    assert "DuckDB" not in run.err and "Interrupted!" not in run.err, run.err  # no fake database error
    errors = [line for line in run.err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "interrupted" in errors[0], run.err
    return committed(run)


@pytest.mark.parametrize("sink", ["duckdb", "parquet"])
def test_ctrl_c_keeps_whole_committed_days_and_names_them(sink, tmp_path):
    files = day_files(tmp_path / "in", date(2024, 1, 1), 4, n=N)
    target = ["--duckdb", str(tmp_path / "m.duckdb")] if sink == "duckdb" else ["--parquet", str(tmp_path / "pq")]
    run = interrupt_after_first_day(["backfill", *[f for p in files for f in ("--input", str(p))], "--store-ticks",
                                     "--sink", sink, *target])
    days = check_clean_interrupt(run, 130)
    assert 1 <= len(days) < 4, run.err
    # Exactly the named days are stored, each whole (every trade of it), nothing of any other day.
    if sink == "duckdb":
        got = mdstream("query", "--duckdb", str(tmp_path / "m.duckdb"), "--format", "json",
                       "SELECT strftime(timestamp_in, '%Y-%m-%d') AS d, trades FROM candles_1d ORDER BY 1")
        stored = {row["d"]: row["trades"] for row in json.loads(got.out)}
        ticks = json.loads(mdstream("query", "--duckdb", str(tmp_path / "m.duckdb"), "--format", "json",
                                    "SELECT count(*) AS n FROM ticks").out)[0]["n"]
    else:
        daily = read_candles(tmp_path / "pq").filter(timeframe="1d").collect()
        stored = {str(d): n for d, n in zip(daily["timestamp_in"].dt.date(), daily["trades"])}
        ticks = sum(1 for _ in (tmp_path / "pq" / "ticks").rglob("*.parquet")) * N
        assert not (tmp_path / "pq" / ".staging").exists()
    assert stored == {day: N for day in days}
    assert ticks == N * len(days)


def test_ctrl_c_during_a_download_stops_at_once_and_leaves_nothing(tmp_path):
    with blackhole() as port:  # the Tardis endpoint accepts and never answers
        process = start("backfill", "--exchange", "binance-futures", "--symbols", "BTCUSDT", "--from", "2024-01-01",
                        "--to", "2024-01-03", "--download-timeout", "60", "--cache-dir", str(tmp_path / "cache"),
                        "--duckdb", str(tmp_path / "m.duckdb"),
                        MDSTREAM_TARDIS_ENDPOINT=f"http://127.0.0.1:{port}/v1", NO_PROXY="127.0.0.1")
        time.sleep(3.0)
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert time.monotonic() - sent < 5, "the interrupt waited for the download"
    run = Run(process.returncode, out, err)
    check_clean_interrupt(run, 130)
    assert "before any day was committed" in run.err
    assert not (tmp_path / "m.duckdb").exists()


def test_sigterm_is_a_clean_stop_too(tmp_path):
    files = day_files(tmp_path / "in", date(2024, 1, 1), 3, n=N)
    run = interrupt_after_first_day(["backfill", *[f for p in files for f in ("--input", str(p))],
                                     "--duckdb", str(tmp_path / "m.duckdb")], signal.SIGTERM)
    days = check_clean_interrupt(run, 143)
    assert days and "SIGTERM" in run.err


def test_files_named_any_way_are_written_day_by_day_too(tmp_path):
    """Day files without Tardis names (here in reverse order on the command line) are still taken apart by the
    days their trades cover, so an interrupt keeps the days already written."""
    named = day_files(tmp_path / "in", date(2024, 1, 1), 4, n=N)
    files = [p.rename(p.with_name(f"part-{i}.csv.gz")) for i, p in enumerate(named)]
    db = tmp_path / "m.duckdb"
    run = interrupt_after_first_day(["backfill", *[f for p in reversed(files) for f in ("--input", str(p))],
                                     "--duckdb", str(db)])
    days = check_clean_interrupt(run, 130)
    assert 1 <= len(days) < 4 and days[0] == "2024-01-01", run.err
    got = mdstream("query", "--duckdb", str(db), "--format", "json",
                   "SELECT strftime(timestamp_in, '%Y-%m-%d') AS d, trades FROM candles_1d ORDER BY 1")
    assert {row["d"]: row["trades"] for row in json.loads(got.out)} == {day: N for day in days}
