"""`mdstream stream` as a user runs it: replay to DuckDB in both modes, then verify; live metrics and health."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from click.testing import CliRunner

from mdstream.cli import main
from mdstream.ops.query import run_query

TRADES = "tardis/binance-futures_trades_2020-02-22_BTCUSDT.first9999rows.csv"


def test_replay_in_both_modes_stores_ticks_and_candles_that_verify(real_data, tmp_path):
    db = tmp_path / "replay.duckdb"
    runner = CliRunner()
    result = runner.invoke(main, ["stream", "--source", "replay", "--input", str(real_data / TRADES), "--speed", "0",
                                  "--mode", "both", "--duckdb", str(db), "--quiet", "--timeframes", "15s,1m,5m"],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    query = runner.invoke(main, ["query", "--duckdb", str(db), "--format", "json",
                                 "SELECT (SELECT count(*) FROM ticks) AS ticks, (SELECT count(*) FROM candles_latest) AS candles, "
                                 "(SELECT count(*) FROM candles) AS raw, (SELECT sum(trades)::BIGINT FROM candles_1m) AS traded"])
    row = json.loads(query.output)[0]
    assert row["ticks"] == 9999 and row["traded"] == 9999
    assert row["candles"] == row["raw"] > 0
    # The SQL recomputation from the stored ticks agrees with every candle the stream wrote.
    verify = runner.invoke(main, ["verify", "--duckdb", str(db)])
    assert verify.exit_code == 0, verify.output
    assert "0 mismatches" in verify.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.slow
def test_live_job_serves_metrics_and_health_and_stops_after_duration(tmp_path):
    port = _free_port()
    job = subprocess.Popen(
        [sys.executable, "-m", "mdstream", "stream", "--source", "synthetic", "--duration", "6", "--quiet",
         "--log-format", "json", "--metrics-port", str(port), "--duckdb", str(tmp_path / "live.duckdb"),
         "--flush-interval", "0.1", "--timeframes", "15s,1m"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        health, metrics = None, b""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and job.poll() is None:
            try:
                status, body = _get(f"http://127.0.0.1:{port}/healthz")
            except OSError:
                time.sleep(0.2)
                continue
            if status == 200 and json.loads(body).get("status") == "ok":
                health = json.loads(body)
                metrics = _get(f"http://127.0.0.1:{port}/metrics")[1]
                if b"mdstream_ticks_total{" in metrics:
                    # The running job holds the file only while it writes: a reader gets in meanwhile.
                    tables = run_query(tmp_path / "live.duckdb", "SELECT count(*) AS n FROM candles_latest")
                    assert tables.height == 1
                    break
            time.sleep(0.2)
        out, err = job.communicate(timeout=30)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 0, err
    assert health is not None and health["status"] == "ok"
    assert b"mdstream_batches_total" in metrics and b"mdstream_ticks_total{" in metrics
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert lines, out  # JSON logs: one object per line, ending with the summary
    assert any(line.get("ticks", 0) > 0 for line in lines)
