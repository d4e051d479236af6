"""The live page in headless Chromium follows a real `mdstream stream --source synthetic` writing DuckDB: a closed
window appears within 2 s of being written, the data-quality panel shows the stream's own metrics, and a series
of the same file with feed gaps is shaded where `gap` is set."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mdstream.contract.errors import MdstreamError
from mdstream.ops.readonly import reading
from support import chart_db
from support.browser import browser_page, chart_geometry, screenshot, x_of
from support.chart_db import FEED, T0
from support.serve_proc import free_port, mdstream, served, stop

FLUSH_S, LATENCY_BUDGET_MS = 0.2, 2000


def wait_for_candles(db: Path, stream, timeout: float = 60.0) -> None:
    """Until the stream has written a 15s candle (its first full window closes 15-30 s after it starts); fails with
    the stream's output if it exits or never does."""
    deadline, problem = time.monotonic() + timeout, None
    while time.monotonic() < deadline and stream.poll() is None:
        try:
            with reading(db, wait_s=0.5) as con:
                if con.execute("SELECT count(*) FROM candles WHERE exchange = 'synthetic' AND timeframe = '15s'").fetchone()[0]:
                    return
        except MdstreamError as exc:  # busy while the stream writes: try again
            problem = exc
        time.sleep(0.2)
    raise AssertionError(f"the stream wrote no candle (last read: {problem}); its output:\n{stop(stream)[-3000:]}")


def emitted_ms(db: Path, window_start_s: int) -> float:
    """timestamp_out (epoch ms) of the first emission of BTCUSDT's 15s window starting at `window_start_s`."""
    when = datetime.fromtimestamp(window_start_s, tz=timezone.utc)
    with reading(db, wait_s=5) as con:
        row = con.execute("SELECT timestamp_out FROM candles WHERE exchange = 'synthetic' AND timeframe = '15s' "
                          "AND timestamp_in = ? AND revision = 0", [when]).fetchone()
    assert row, f"window {when} is not in the file"
    return row[0].timestamp() * 1000


@pytest.mark.slow
def test_live_page_follows_a_synthetic_stream(tmp_path):
    db, metrics_port = chart_db.build(tmp_path / "live.duckdb"), free_port()
    stream = mdstream("stream", "--source", "synthetic", "--symbols", "BTCUSDT", "--timeframes", "15s,1m",
                      "--sink", "duckdb", "--duckdb", str(db), "--flush-interval", str(FLUSH_S), "--lateness", "0.5",
                      "--metrics-port", str(metrics_port), "--quiet", "--duration", "120")
    try:
        wait_for_candles(db, stream)
        with served(db, "--metrics-url", f"http://127.0.0.1:{metrics_port}", "--poll", "0.2") as url, browser_page() as pg:
            pg.goto(url + "?exchange=synthetic&symbol=BTCUSDT&timeframe=15s")
            pg.wait_for_function("window.mdstream && window.mdstream.state.data && window.mdstream.state.data.t.length > 0")
            first = pg.evaluate("window.mdstream.state.data.t.slice()")
            # The next window to close appears on its own, pushed by the server.
            pg.wait_for_function("(n) => window.mdstream.state.data.t.length > n", arg=len(first), timeout=40_000)
            applied = pg.evaluate("Object.entries(window.mdstream.state.appliedAt).map(([t, ms]) => [Number(t), ms])")
            assert applied, "a candle was added without being recorded"
            for window_start, shown_ms in applied:
                delay = shown_ms - emitted_ms(db, window_start)
                assert 0 <= delay <= LATENCY_BUDGET_MS, f"window {window_start} shown {delay:.0f} ms after it was written"
            assert pg.inner_text("#status").startswith("live")
            # The quality panel reads the stream's own /healthz and /metrics.
            pg.wait_for_function("document.querySelector('#q-feed .badge') !== null", timeout=10_000)
            assert pg.inner_text("#q-feed .badge") in ("ok", "starting")
            assert re.search(r"ticks_total\s+\d+", pg.inner_text("#q-feed"))
            assert "15s" in pg.inner_text("#q-gaps") and "15s" in pg.inner_text("#q-latency")
            screenshot(pg, tmp_path / "live-synthetic.png")
            # Another series of the same file, switched to in the page: feed gaps shaded red where `gap` is set.
            pg.select_option("#series-select", "binance-futures|BTCUSDT")
            pg.wait_for_function("(window.mdstream.state.data || {}).key === 'binance-futures|BTCUSDT|1m'")
            data = pg.evaluate("({t: window.mdstream.state.data.t, g: window.mdstream.state.data.g})")
            assert [i for i, gap in enumerate(data["g"]) if gap == "feed"] == list(FEED)
            pg.evaluate("document.getElementById('legend').style.visibility = 'hidden'")
            pg.wait_for_timeout(200)
            shot = screenshot(pg, tmp_path / "live-gaps.png")
            geometry = chart_geometry(pg)
            y = int(geometry["top"] + geometry["panes"][0] - 4)
            for i in (*FEED, FEED[-1] + 5):
                r, g, b = shot.getpixel((int(x_of(pg, data["t"][i])), y))
                assert (r > g + 25 and r > b + 20) == (i in FEED), (i, (r, g, b))
            # A link with a window range opens that window of any series, read once (no live subscription).
            start, end = T0 + timedelta(minutes=15), T0 + timedelta(minutes=75)
            pg.goto(url + f"?exchange=binance-futures&symbol=BTCUSDT&timeframe=5m&from={start:%Y-%m-%dT%H:%M}&to={end:%Y-%m-%dT%H:%M}")
            pg.wait_for_function("(window.mdstream.state.data || {}).timeframe === '5m'")
            assert pg.evaluate("window.mdstream.state.data.t") == [int((start + timedelta(minutes=5 * i)).timestamp()) for i in range(12)]
            assert "fixed range" in pg.inner_text("#status") and pg.evaluate("window.mdstream.state.source") is None
            shown = pg.evaluate("window.mdstream.chart.timeScale().getVisibleRange()")
            assert shown["from"] <= start.timestamp() and shown["to"] >= end.timestamp() - 300
            assert pg.errors_seen == []
    finally:
        out = stop(stream)
    assert "Traceback" not in out, out[-3000:]

