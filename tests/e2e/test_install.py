"""A plain install works and starts fast: the wheel in a fresh venv runs the demo and a synthetic stream
(no undeclared dependency, no warning wall), and `mdstream --version`/`--help` load no data library."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import pytest
from conftest import REPO

from support.cli_run import MDSTREAM, env

HEAVY = ("polars", "pyarrow", "duckdb", "numpy", "rich", "google", "grpc", "tardis_dev", "aiohttp", "websockets",
         "prometheus_client", "asyncio")


def seconds(*args: str) -> float:
    """Wall time of one `mdstream args...` run."""
    began = time.perf_counter()
    done = subprocess.run([MDSTREAM, *args], capture_output=True, env=env())
    assert done.returncode == 0, done.stderr
    return time.perf_counter() - began


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_version_and_help_take_at_most_0_3_seconds(flag):
    runs = [seconds(flag) for _ in range(5)]
    # The median of five: one slow run on a busy machine is noise, a slow median is a regression.
    assert statistics.median(runs) <= 0.3, runs


def test_the_command_line_imports_no_data_library_until_a_command_runs():
    code = ("import sys; from mdstream.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout


@pytest.mark.slow
def test_wheel_installs_with_plain_pip_and_runs_the_demo_and_a_stream():
    done = subprocess.run([str(REPO / "scripts" / "check_install.sh")], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "install check passed" in done.stdout
    assert "ModuleNotFoundError" not in done.stderr and "SetuptoolsDeprecationWarning" not in done.stderr
    assert "Package 'mdstream.sql" not in done.stderr  # the old wall of setuptools warnings


def test_a_backfill_in_a_pipe_imports_only_polars_and_duckdb(tmp_path):
    """What a sharded or scheduled backfill pays per process: no pyarrow, numpy, rich (plain lines when no terminal
    shows them), asyncio or cloud client."""
    trades = tmp_path / "binance-futures_trades_2024-01-02_BTCUSDT.csv"
    trades.write_text("exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
                      "binance-futures,BTCUSDT,1704153600000000,1704153600001000,1,buy,42000.5,0.1\n"
                      "binance-futures,BTCUSDT,1704153601000000,1704153601001000,2,sell,42001.0,0.2\n")
    args = ["backfill", "--input", str(trades), "--duckdb", str(tmp_path / "m.duckdb"), "--quiet"]
    code = ("import sys; from mdstream.cli import main\n"
            f"try:\n    main({args!r})\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env())
    assert done.returncode == 0, done.stderr
    assert "2 ticks read" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "['duckdb', 'polars']", done.stdout
