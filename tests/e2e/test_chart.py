"""The HTML chart: overlays are right, the page is self-contained and headless Chromium draws every candle."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from mdstream.cli.ops import chart as chart_command
from mdstream.cli.ops import commands
from mdstream.contract import columns as c
from mdstream.contract import schema
from mdstream.contract.errors import ConfigError, InputError
from mdstream.ops import chart
from mdstream.sinks import sqlfiles

T0 = datetime(2024, 1, 1, 23, 0, tzinfo=timezone.utc)  # crosses UTC midnight after 60 minutes
N = 90
FEED = {10, 11, 12}
QUIET = {40, 41}
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]


def make_candles(symbol: str = "BTCUSDT", exchange: str = "binance-futures", n: int = N) -> pl.DataFrame:
    rng = np.random.default_rng(7)
    close = 42000 + np.cumsum(rng.normal(0, 15, n))
    opens = np.concatenate([[42000.0], close[:-1]])
    volume = rng.uniform(1, 20, n)
    for i in (q for q in QUIET if q < n):
        close[i] = opens[i] = close[i - 1]
        volume[i] = 0.0
    high = np.maximum(opens, close) + np.where(volume > 0, 5.0, 0.0)
    low = np.minimum(opens, close) - np.where(volume > 0, 5.0, 0.0)
    starts = [T0 + timedelta(minutes=i) for i in range(n)]
    frame = pl.DataFrame({
        c.EXCHANGE: exchange, c.SYMBOL: symbol, c.TIMEFRAME: "1m", c.TIMESTAMP_IN: starts,
        c.TIMESTAMP_OUT: [s + timedelta(minutes=1, milliseconds=200) for s in starts],
        c.OPEN: opens, c.HIGH: high, c.LOW: low, c.CLOSE: close, c.VOLUME: volume,
        c.QUOTE_VOLUME: volume * (high + low) / 2, c.TRADES: [0 if v == 0 else 10 for v in volume],
        c.GAP: [c.GAP_FEED if i in FEED else c.GAP_QUIET if i in QUIET else None for i in range(n)],
        c.REVISION: 0, c.LATE_TRADES: 0,
    })
    return schema.conform(frame, schema.CANDLE_SCHEMA)


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("chart") / "candles.duckdb"
    candles = make_candles()
    revised = candles.slice(5, 1).with_columns(pl.lit(1, dtype=pl.Int64).alias(c.REVISION), (pl.col(c.CLOSE) + 1).alias(c.CLOSE))
    everything = pl.concat([candles, revised, make_candles("ETHUSDT", n=30)])
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE candles AS SELECT * FROM everything")
    ticks, quarantine = schema.empty(schema.TICK_SCHEMA), schema.empty(schema.QUARANTINE_SCHEMA)
    con.execute("CREATE TABLE ticks AS SELECT * FROM ticks")
    con.execute("CREATE TABLE quarantine AS SELECT * FROM quarantine")
    con.execute(sqlfiles.read("duckdb/views.sql"))
    con.close()
    return path


def test_load_latest_revision_only(db):
    frame = chart.load_candles(db, "BTCUSDT", "1m")
    assert frame.height == N and frame.get_column(c.TIMESTAMP_IN).is_sorted()
    assert frame.filter(pl.col(c.REVISION) == 1).height == 1
    window = chart.load_candles(db, "BTCUSDT", "1m", start=T0 + timedelta(minutes=10), end=T0 + timedelta(minutes=20))
    assert window.height == 10 and window.get_column(c.TIMESTAMP_IN)[0] == T0 + timedelta(minutes=10)
    assert chart.load_candles(db, "BTCUSDT", "1m", limit=7).get_column(c.TIMESTAMP_IN)[-1] == T0 + timedelta(minutes=N - 1)


def test_overlays_match_talib_and_session_vwap():
    talib = pytest.importorskip("talib")
    frame = chart.overlays(make_candles().lazy()).collect()
    close = frame.get_column(c.CLOSE).to_numpy()
    upper, middle, lower = talib.BBANDS(close, timeperiod=20, nbdevup=2, nbdevdn=2, matype=0)
    for name, expected in ((chart.BB_UPPER, upper), (chart.BB_MID, middle), (chart.BB_LOWER, lower)):
        got = frame.get_column(name).to_numpy()
        assert np.isnan(expected[:19]).all() and frame.get_column(name)[:19].is_null().all()
        np.testing.assert_allclose(got[19:], expected[19:], rtol=1e-9)
    # Session VWAP restarts at UTC midnight (row 60 is 2024-01-02 00:00).
    q, v = frame.get_column(c.QUOTE_VOLUME).to_numpy(), frame.get_column(c.VOLUME).to_numpy()
    vwap = frame.get_column(chart.VWAP_LINE).to_numpy()
    assert vwap[59] == pytest.approx(q[:60].sum() / v[:60].sum(), rel=1e-12)
    assert vwap[60] == pytest.approx(q[60] / v[60], rel=1e-12)


def test_render_is_offline_and_escaped():
    data = chart.chart_data(make_candles(n=25), "binance", "</script><b>", "1m")
    page = chart.render_html(data)
    assert "</script><b>" not in page and "&lt;/script&gt;&lt;b&gt;" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "page must not load anything remote"
    assert len(data["t"]) == 25 and data["tf_ms"] == 60_000


def test_errors(db, tmp_path):
    with pytest.raises(InputError, match="no 1m candles for SOLUSDT"):
        chart.load_candles(db, "SOLUSDT", "1m")
    with pytest.raises(InputError, match="not found"):
        chart.load_candles(tmp_path / "missing.duckdb", "BTCUSDT", "1m")
    with pytest.raises(ConfigError):
        chart.load_candles(db, "BTCUSDT", "2m")
    empty_db = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty_db)).close()
    with pytest.raises(InputError, match="candles_latest"):
        chart.load_candles(empty_db, "BTCUSDT", "1m")


def test_several_exchanges_need_exchange(tmp_path):
    path = tmp_path / "two.duckdb"
    two_exchanges = pl.concat([make_candles(n=5), make_candles(exchange="bybit", n=5)])
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE candles AS SELECT * FROM two_exchanges")
    con.execute("CREATE VIEW candles_latest AS SELECT * FROM candles")
    con.close()
    with pytest.raises(ConfigError, match="--exchange"):
        chart.load_candles(path, "BTCUSDT", "1m")
    assert chart.load_candles(path, "BTCUSDT", "1m", exchange="bybit").height == 5


def test_cli_help_and_failure(db, tmp_path):
    assert commands == [chart_command]
    result = CliRunner().invoke(chart_command, ["--help"])
    assert result.exit_code == 0 and "Example:" in result.output
    result = CliRunner().invoke(chart_command, ["--symbol", "NOPE", "--duckdb", str(db), "--output", str(tmp_path / "x.html")])
    assert result.exit_code == 1 and "no 1m candles for NOPE" in result.output


@pytest.fixture(scope="module")
def rendered_dom(db, tmp_path_factory) -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium not installed (apt-get install -y chromium) - cannot check the chart renders")
    out = tmp_path_factory.mktemp("html") / "btc.html"
    result = CliRunner().invoke(chart_command, ["--symbol", "BTCUSDT", "--timeframe", "1m", "--duckdb", str(db), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert f"{N} 1m candles" in result.output
    profile = tmp_path_factory.mktemp("profile")
    proc = subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=3000", "--dump-dom", out.as_uri()],
        capture_output=True, text=True, timeout=90,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_chromium_draws_every_candle(rendered_dom):
    dom = rendered_dom
    assert 'id="candles-svg"' in dom and f'data-candles="{N}"' in dom
    assert len(re.findall(r'<g class="candle (?:up|down)"', dom)) == N
    assert len(re.findall(r'<rect class="vol"', dom)) == N
    assert len(re.findall(r'class="gap-feed"', dom)) == len(FEED)
    assert len(re.findall(r'class="gap-quiet"', dom)) == len(QUIET)
    for line_id in ("line-vw", "line-bu", "line-bm", "line-bl"):
        assert f'id="{line_id}"' in dom
    assert f"{N} candles" in dom
    assert not math.isnan(float(re.search(r'<path class="vwap" d="M([\d.]+),', dom).group(1)))
