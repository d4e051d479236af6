"""`mdstream chart`: one offline HTML file on lightweight-charts, checked in headless Chromium (data in the page,
pixels on screen: candles, gap shading, legend, switches, links) and in its data (latest revisions, overlays)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import duckdb
import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from mdstream.cli import main
from mdstream.contract import columns as c
from mdstream.contract import timeframes
from mdstream.ops import chart, page
from mdstream.ops.readonly import reading
from support import chart_db
from support.browser import browser_page, chart_geometry, screenshot, x_of
from support.chart_db import ETH_N, FEED, FIVE_MIN_N, QUIET, REVISED, T0, N

BACKGROUND, GRID = (0x10, 0x14, 0x18), (0x1A, 0x1F, 0x26)


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    return chart_db.build(tmp_path_factory.mktemp("chart") / "candles.duckdb")


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_loads_latest_revision_of_every_series(db):
    with reading(db) as con:
        found = chart.list_series(con)
        assert [(s.symbol, s.timeframe) for s in found] == [("BTCUSDT", "1m"), ("BTCUSDT", "5m"), ("ETHUSDT", "1m")]
        btc = chart.load_candles(con, found[0])
        window = chart.load_candles(con, found[0], start=T0 + timedelta(minutes=10), end=T0 + timedelta(minutes=20))
        newest = chart.load_candles(con, found[0], limit=7)
    assert btc.height == N and btc.get_column(c.TIMESTAMP_IN).is_sorted()
    assert btc.filter(pl.col(c.REVISION) == 1).get_column(c.TIMESTAMP_IN).to_list() == [T0 + timedelta(minutes=REVISED)]
    assert window.height == 10 and window.get_column(c.TIMESTAMP_IN)[0] == T0 + timedelta(minutes=10)
    assert newest.height == 7 and newest.get_column(c.TIMESTAMP_IN)[-1] == T0 + timedelta(minutes=N - 1)


def test_bollinger_bands_match_talib():
    talib = pytest.importorskip("talib")
    frame = chart.overlays(chart_db.make_candles().lazy()).collect()
    close = frame.get_column(c.CLOSE).to_numpy()
    upper, middle, lower = talib.BBANDS(close, timeperiod=20, nbdevup=2, nbdevdn=2, matype=0)
    for name, expected in ((chart.BB_UPPER, upper), (chart.BB_MID, middle), (chart.BB_LOWER, lower)):
        assert np.isnan(expected[:19]).all() and frame.get_column(name)[:19].is_null().all()
        np.testing.assert_allclose(frame.get_column(name).to_numpy()[19:], expected[19:], rtol=1e-9)


def test_payload_keeps_warm_up_out_but_bands_in():
    candles = chart_db.make_candles()
    series = chart.Series("binance-futures", "BTCUSDT", "1m")
    whole = chart.payload(candles, series)
    tail = chart.payload(candles, series, keep_from=T0 + timedelta(minutes=30))
    assert len(tail["t"]) == N - 30 and tail["bu"] == whole["bu"][30:] and tail["bu"][0] is not None
    assert whole["tf_s"] == 60 and whole["t"][0] == int(T0.timestamp())


def test_page_inlines_everything_and_escapes(tmp_path):
    candles = chart_db.make_candles(n=25)
    data = chart.payload(candles, chart.Series("binance", "</script><b>", "1m"))
    html = page.render(chart.chart_config([data], initial=data["key"], features=chart.LEGEND_FEATURES),
                       title="</script><b>")
    assert "</script><b>" not in html and "&lt;/script&gt;&lt;b&gt;" in html
    assert f"TradingView Lightweight Charts™ v{page.LWC_VERSION}" in html
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)\s*=\s*["']?(https?:)?//""", html)
    vendor = Path(page.__file__).parent / "web" / "vendor"
    assert "Apache License" in (vendor / "LICENSE").read_text() and "TradingView" in (vendor / "NOTICE").read_text()


def test_cli_errors_are_one_line(db, tmp_path):
    out = str(tmp_path / "x.html")
    result = run("chart", "--symbol", "NOPE", "--duckdb", str(db), "--output", out)
    assert result.exit_code == 1 and "no 1m candles for NOPE" in result.output
    result = run("chart", "--duckdb", str(tmp_path / "missing.duckdb"), "--output", out)
    assert result.exit_code == 1 and "not found" in result.output
    result = run("chart", "--duckdb", str(db), "--timeframe", "2m", "--output", out)
    assert result.exit_code == 1 and "unknown timeframe" in result.output
    result = run("chart", "--duckdb", str(db), "--features", "rsi_5,nope", "--output", out)
    assert result.exit_code == 1 and "unknown feature(s) nope" in result.output
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    result = run("chart", "--duckdb", str(empty), "--output", out)
    assert result.exit_code == 1 and "not an mdstream database" in result.output
    help_text = " ".join(run("chart", "--help").output.split())
    assert "Example:" in help_text and ", ".join(timeframes.SUPPORTED_TIMEFRAMES) in help_text
    assert not Path(out).exists()


def test_symbol_on_two_exchanges_is_two_series(tmp_path):
    path = tmp_path / "two.duckdb"
    from mdstream.sinks.duckdb import DuckDBSink
    sink = DuckDBSink(path)
    sink.write("candles", pl.concat([chart_db.make_candles(n=5), chart_db.make_candles(exchange="bybit", n=5)]))
    sink.close()
    result = run("chart", "--symbol", "BTCUSDT", "--duckdb", str(path), "--output", str(tmp_path / "two.html"))
    assert result.exit_code == 0 and "2 series, 10 candles" in result.output
    result = run("chart", "--exchange", "bybit", "--duckdb", str(path), "--output", str(tmp_path / "one.html"))
    assert "1 series, 5 candles" in result.output


@pytest.fixture(scope="module")
def html_file(db, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("html") / "chart.html"
    result = run("chart", "--duckdb", str(db), "--output", str(out), "--features", "rsi_5,macd_hist,volatility_10")
    assert result.exit_code == 0, result.output
    assert "3 series, 138 candles" in result.output
    return out


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


def rgb_near(pixel, target, tolerance=12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, target))


def test_chromium_draws_candles_overlays_gaps_and_markers(html_file, artifacts):
    with browser_page() as pg:
        pg.goto(html_file.as_uri())
        pg.wait_for_function("window.mdstream && window.mdstream.state.data !== null")
        pg.wait_for_timeout(300)
        counts = pg.evaluate("""() => { const s = window.mdstream.series; const n = (x) => x.data().length;
            const valued = (x) => x.data().filter((p) => p.value !== undefined).length;
            return {candles: n(s.candles), volume: n(s.volume), gaps: valued(s.gaps), bb: valued(s.bbUpper),
                    vwap: valued(s.vwap), markers: window.mdstream.markers.markers().map((m) => [m.time, m.text]),
                    gapColors: s.gaps.data().filter((p) => p.value).map((p) => p.color)}; }""")
        assert counts["candles"] == counts["volume"] == N
        assert counts["gaps"] == len(FEED) + len(QUIET) and counts["bb"] == N - 19 and counts["vwap"] == N
        assert counts["markers"] == [[int((T0 + timedelta(minutes=REVISED)).timestamp()), "r1"]]
        # The page asked for nothing but the file itself: it works offline.
        assert pg.requests_seen == [html_file.as_uri()] and pg.errors_seen == []
        pg.evaluate("document.getElementById('legend').style.visibility = 'hidden'")
        shot = screenshot(pg, artifacts / "chart-file.png")
        geometry = chart_geometry(pg)
        y = int(geometry["top"] + geometry["panes"][0] - 4)  # the bottom strip of the price pane: no candle there
        colour = {i: shot.getpixel((int(x_of(pg, int((T0 + timedelta(minutes=i)).timestamp()))), y)) for i in range(N)}
    for i in FEED:
        r, g, b = colour[i]
        assert r > g + 25 and r > b + 20, f"window {i} is a feed gap but its column is {colour[i]}"
    for i in QUIET:
        r, g, b = colour[i]
        assert min(r, g, b) > max(BACKGROUND) + 10 and max(r, g, b) - min(r, g, b) < 20, f"quiet window {i}: {colour[i]}"
    plain = [colour[i] for i in (0, 20, 30, 50, 70)]  # complete windows: background, or a grid line
    assert all(rgb_near(p, BACKGROUND, 4) or rgb_near(p, GRID, 4) for p in plain), plain
    pixels = np.asarray(shot)
    up = np.all(np.abs(pixels - np.array([0x26, 0xA6, 0x9A])) < 10, axis=-1).sum()
    down = np.all(np.abs(pixels - np.array([0xEF, 0x53, 0x50])) < 10, axis=-1).sum()
    vwap = np.all(np.abs(pixels - np.array([0xF2, 0xC9, 0x4C])) < 10, axis=-1).sum()
    assert up > 500 and down > 500 and vwap > 300, (up, down, vwap)


def test_legend_switches_and_links(html_file, artifacts):
    revised_t = int((T0 + timedelta(minutes=REVISED)).timestamp())
    with browser_page() as pg:
        pg.goto(html_file.as_uri())
        pg.wait_for_function("window.mdstream && window.mdstream.state.data !== null")
        geometry = chart_geometry(pg)
        mid_y = geometry["top"] + geometry["panes"][0] / 2
        pg.mouse.move(x_of(pg, revised_t), mid_y)
        legend = pg.inner_text("#legend")
        data = pg.evaluate("(t) => { const d = window.mdstream.state.data; const i = d.t.indexOf(t); "
                           "return {c: d.c[i], rsi: d.f.rsi_5[i]}; }", revised_t)
        assert "revision 1 (2 late trades)" in legend and f"C {data['c']:.2f}" in legend
        assert "rsi_5" in legend and "macd_hist" in legend and "volatility_10" in legend and "cs_spread" not in legend
        pg.mouse.move(x_of(pg, int((T0 + timedelta(minutes=FEED[0])).timestamp())), mid_y)
        assert "gap: feed" in pg.inner_text("#legend")
        screenshot(pg, artifacts / "chart-legend.png")
        # Timeframe buttons come from the contract; those without data are disabled.
        buttons = pg.evaluate("() => [...document.querySelectorAll('#timeframes button')].map((b) => [b.textContent, b.disabled])")
        assert [b[0] for b in buttons] == list(timeframes.SUPPORTED_TIMEFRAMES)
        assert [b[0] for b in buttons if not b[1]] == ["1m", "5m"]
        pg.click("#timeframes button[data-timeframe='5m']")
        assert pg.evaluate("window.mdstream.series.candles.data().length") == FIVE_MIN_N
        assert "timeframe=5m" in pg.url
        pg.select_option("#series-select", "binance-futures|ETHUSDT")
        assert pg.evaluate("[window.mdstream.state.key, window.mdstream.series.candles.data().length]") == [
            "binance-futures|ETHUSDT|1m", ETH_N]
        screenshot(pg, artifacts / "chart-eth.png")
        # A link opens a series and a window range.
        start, end = T0 + timedelta(minutes=20), T0 + timedelta(minutes=50)
        pg.goto(html_file.as_uri() + f"?symbol=BTCUSDT&timeframe=1m&from={start:%Y-%m-%dT%H:%M}&to={end:%Y-%m-%dT%H:%M}")
        pg.wait_for_function("window.mdstream && window.mdstream.state.data !== null")
        shown = pg.evaluate("window.mdstream.chart.timeScale().getVisibleRange()")
        # The whole window is shown (bars are at most 40 px wide, so a short window gets some context around it).
        assert shown["from"] <= start.timestamp() and shown["to"] >= end.timestamp() - 60
        assert shown["to"] - shown["from"] <= 1.5 * (end - start).total_seconds()
        link = parse_qs(urlparse(pg.get_attribute("#permalink", "href")).query)
        assert link["symbol"] == ["BTCUSDT"] and link["timeframe"] == ["1m"] and link["exchange"] == ["binance-futures"]
        linked = datetime.fromisoformat(link["from"][0]), datetime.fromisoformat(link["to"][0])
        assert linked[0] <= start and linked[1] >= end and linked[1] - linked[0] <= 1.5 * (end - start) + timedelta(minutes=1)
        assert pg.errors_seen == []
