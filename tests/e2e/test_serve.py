"""`mdstream serve`: loopback only unless told, never writes the file, waits for a writer's lock, serves series,
windows and the data-quality panel, and pushes candles as they are written (server-sent events)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner

from mdstream.cli import main
from mdstream.contract import columns as c
from mdstream.contract.clock import WallClock
from mdstream.contract.errors import ConfigError
from mdstream.observe.metrics import BatchHealth, StreamMetrics
from mdstream.observe.metrics_http import start_metrics_server
from mdstream.ops.readonly import open_readonly
from mdstream.ops.serve import check_bind, is_loopback
from mdstream.sinks.duckdb import DuckDBSink
from support import chart_db
from support.chart_db import FEED, FIVE_MIN_N, QUARANTINE_REASONS, QUIET, T0, N
from support.serve_proc import event_stream, get, served

BTC = "exchange=binance-futures&symbol=BTCUSDT"


def now_minute() -> datetime:
    return datetime.now(timezone.utc).replace(second=0, microsecond=0)


@pytest.fixture(scope="module")
def base_db(tmp_path_factory) -> Path:
    """The chart database plus SOLUSDT emitted within the last hour (200 ms after each close) and BTCUSDT on bybit."""
    path = chart_db.build(tmp_path_factory.mktemp("serve") / "base.duckdb")
    sink = DuckDBSink(path)
    sink.write("candles", pl.concat([chart_db.make_candles("SOLUSDT", n=30, start=now_minute() - timedelta(minutes=40)),
                                     chart_db.make_candles(exchange="bybit", n=5)]))
    sink.close()
    return path


@pytest.fixture
def db(base_db, tmp_path) -> Path:
    """A fresh copy of base_db for a test that writes or fingerprints it."""
    return Path(shutil.copy(base_db, tmp_path / "candles.duckdb"))


def fingerprint(path: Path) -> tuple:
    """Bytes, modification time and the folder listing: anything a write would change."""
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns, sorted(p.name for p in path.parent.iterdir())


def test_refuses_to_listen_beyond_loopback_unless_told(base_db):
    for host in ("0.0.0.0", "192.168.1.20", "::", "example.org"):
        result = CliRunner().invoke(main, ["serve", "--duckdb", str(base_db), "--host", host, "--port", "0"])
        assert result.exit_code == 1 and f"refusing to serve on {host}" in result.output and "--allow-remote" in result.output
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.org", ""))
    check_bind("0.0.0.0", allow_remote=True)
    with pytest.raises(ConfigError):
        check_bind("0.0.0.0", allow_remote=False)
    help_text = CliRunner().invoke(main, ["serve", "--help"]).output
    assert "Example:" in help_text and "[default: 127.0.0.1]" in help_text


def test_connections_cannot_write_or_reach_files(db, tmp_path):
    con = open_readonly(db)
    try:
        for statement in ("CREATE TABLE x (i INTEGER)", "DELETE FROM candles", "INSERT INTO quarantine SELECT * FROM quarantine",
                          f"COPY candles TO '{tmp_path / 'out.csv'}'", "SELECT * FROM read_csv('/etc/hostname')",
                          f"ATTACH '{tmp_path / 'other.duckdb'}'", "SET enable_external_access = true"):
            with pytest.raises(duckdb.Error):
                con.execute(statement)
    finally:
        con.close()
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "other.duckdb").exists()


def test_serving_never_writes_the_file(db):
    before = fingerprint(db)
    evil = quote("BTCUSDT'; DROP TABLE candles; --")
    with served(db) as url:
        assert get(url)[0] == 200 and get(url + "api/series")[0] == 200
        for query in (f"api/candles?{BTC}&timeframe=1m", f"api/candles?{BTC}&timeframe=5m&from=2024-01-01T23:30&to=1704156000",
                      f"api/quality?{BTC}", f"api/candles?symbol={evil}&timeframe=1m", "api/candles?symbol=BTCUSDT&timeframe=7m",
                      f"api/candles?{BTC}&limit=0", f"api/quality?exchange=x&symbol={evil}"):
            assert get(url + query)[0] in (200, 400, 404)
        with event_stream(url + f"api/live?{BTC}&timeframe=1m") as next_event:
            assert next_event()[0] == "snapshot"
            time.sleep(1.0)  # the live feed looks at the file a few times meanwhile
    assert fingerprint(db) == before


def test_candles_windows_and_errors(base_db):
    with served(base_db) as url:
        series = get(url + "api/series")[1]["series"]
        assert [s["key"] for s in series][:3] == ["binance-futures|BTCUSDT|1m", "binance-futures|BTCUSDT|5m",
                                                  "binance-futures|ETHUSDT|1m"]
        status, body = get(url + f"api/candles?{BTC}&timeframe=1m&from=2024-01-01T23:10&to=2024-01-01T23:20")
        assert status == 200 and body["t"][0] == int((T0 + timedelta(minutes=10)).timestamp()) and len(body["t"]) == 10
        assert body["g"][:3] == ["feed"] * 3 and set(body["f"]) == {"rsi_5", "macd_hist", "bb_pctb_20", "volatility_10",
                                                                   "volume_ratio", "trade_intensity", "vwap_deviation", "cs_spread"}
        status, body = get(url + f"api/candles?{BTC}&timeframe=1m&limit=7")
        assert status == 200 and body["t"][-1] == int((T0 + timedelta(minutes=N - 1)).timestamp()) and len(body["t"]) == 7
        assert get(url + "api/candles?symbol=ETHUSDT&timeframe=1m")[1]["exchange"] == "binance-futures"
        status, body = get(url + "api/candles?symbol=BTCUSDT&timeframe=1m")
        assert status == 400 and "several exchanges (binance-futures, bybit)" in body["error"]
        status, body = get(url + "api/candles?symbol=NOPE&timeframe=1m")
        assert status == 404 and "no 1m candles for NOPE" in body["error"]
        assert get(url + f"api/candles?{BTC}&timeframe=2m")[0] == 400
        assert get(url + f"api/candles?{BTC}&timeframe=1m&from=yesterday")[1]["error"].startswith("'yesterday' is not a time")
        page = get(url + f"?{BTC}&timeframe=5m")[1]
        assert "LightweightCharts" in page and '"mode":"live"' in page


def test_waits_for_a_writer_then_says_busy(base_db, tmp_path):
    db = Path(shutil.copy(base_db, tmp_path / "locked.duckdb"))
    hold = "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(float(sys.argv[2]))"
    with served(db) as url:
        for seconds, expected in ((0.8, 200), (4.0, 503)):
            holder = subprocess.Popen([sys.executable, "-c", hold, str(db), str(seconds)], stdout=subprocess.PIPE, text=True)
            assert holder.stdout.readline().strip() == "held"
            started = time.monotonic()
            status, body = get(url + f"api/candles?{BTC}&timeframe=1m")
            waited = time.monotonic() - started
            holder.wait(timeout=10)
            assert status == expected, body
            if expected == 200:
                assert len(body["t"]) == N and 0.3 < waited < 2.0, waited
            else:
                assert "another process has held the file's lock" in body["error"] and waited < 3.0


def test_quality_panel_counts_gaps_latency_quarantine_and_feed_status(base_db):
    metrics, health = StreamMetrics(), BatchHealth(WallClock())
    metrics.ticks_total.labels(exchange="synthetic", symbol="BTCUSDT").inc(1234)
    metrics.gap(2)
    health.mark_batch()
    server = start_metrics_server(0, host="127.0.0.1", health=health, registry=metrics.registry)
    try:
        with served(base_db, "--metrics-url", server.url) as url:
            status, q = get(url + f"api/quality?{BTC}")
            sol = get(url + "api/quality?exchange=binance-futures&symbol=SOLUSDT")[1]
    finally:
        server.stop()
    assert status == 200
    gaps = {row["timeframe"]: row for row in q["gaps"]}
    assert list(gaps) == ["1m", "5m"]
    assert (gaps["1m"]["candles"], gaps["1m"]["gaps_feed"], gaps["1m"]["gaps_quiet"]) == (N, len(FEED), len(QUIET))
    assert (gaps["1m"]["revised_candles"], gaps["1m"]["late_trades"]) == (1, 2)
    assert (gaps["5m"]["candles"], gaps["5m"]["gaps_feed"]) == (FIVE_MIN_N, len(FEED))
    assert {(r["reason"], r["rows"]) for r in q["quarantine"]} == set(QUARANTINE_REASONS.items())
    assert q["latency"] == []  # BTCUSDT's candles were emitted in 2024, not in the last hour
    assert [(r["timeframe"], r["candles"], r["p50_ms"], r["p99_ms"]) for r in sol["latency"]] == [("1m", 30, 200.0, 200.0)]
    feed = q["feed"]
    values = {v["name"]: v["value"] for v in feed["values"]}
    assert feed["reachable"] and feed["status"] == "ok" and values["ticks_total"] == 1234 and values["gaps_total"] == 2
    assert list(values)[:3] == ["last_batch_age_s", "ticks_total", "batches_total"]


def test_feed_status_of_an_unreachable_stream_is_a_status(base_db):
    from support.serve_proc import free_port
    with served(base_db, "--metrics-url", f"http://127.0.0.1:{free_port()}") as url:
        status, q = get(url + f"api/quality?{BTC}")
    assert status == 200 and q["feed"]["status"] == "unreachable" and not q["feed"]["reachable"] and q["feed"]["error"]
    assert q["gaps"]


def test_live_events_follow_writes_revisions_and_new_series(db):
    with served(db, "--poll", "0.1") as url, event_stream(url + f"api/live?{BTC}&timeframe=1m") as next_event:
        kind, snapshot = next_event()
        assert kind == "snapshot" and len(snapshot["t"]) == N
        sink = DuckDBSink(db, shared=True)
        start = T0 + timedelta(minutes=N)
        emitted = datetime.now(timezone.utc)
        fresh = chart_db.make_candles(n=2, start=start, emitted=emitted, seed=11)
        written = time.monotonic()
        sink.write("candles", fresh)
        sink.flush()
        kind, update = next_event(within=5)
        assert kind == "update" and time.monotonic() - written < 2.0
        assert update["t"] == [int(start.timestamp()), int(start.timestamp()) + 60]
        assert update["c"] == fresh.get_column(c.CLOSE).to_list() and update["bu"][0] is not None  # bands warmed up
        revised = chart_db.revision_of(chart_db.make_candles(), 80).with_columns(
            pl.lit(datetime.now(timezone.utc)).cast(fresh.schema[c.TIMESTAMP_OUT]).alias(c.TIMESTAMP_OUT))
        sink.write("candles", revised)
        sink.flush()
        kind, update = next_event(within=5)
        assert kind == "update" and update["t"][0] == int((T0 + timedelta(minutes=80)).timestamp())
        assert len(update["t"]) == N + 2 - 80 and update["r"][:2] == [1, 0] and update["lt"][0] == 2
        sink.write("candles", chart_db.make_candles("XRPUSDT", n=3, start=start, emitted=datetime.now(timezone.utc)))
        sink.flush()
        assert next_event(within=5)[0] == "series"
        sink.close()
    assert "binance-futures|XRPUSDT|1m" in get_series_after(db)


def get_series_after(db: Path) -> list[str]:
    with served(db) as url:
        return [s["key"] for s in get(url + "api/series")[1]["series"]]


def test_live_feed_hands_out_each_written_group_once_even_when_committed_late(db):
    """The poller finds rows by timestamp_out; a batch stamped before the last one seen (a writer that stamped it,
    then committed after another) is still handed out, and nothing is handed out twice."""
    from mdstream.contract.clock import ManualClock
    from mdstream.ops.chart import Series
    from mdstream.ops.live import LiveFeed

    now = datetime.now(timezone.utc)
    btc = Series("binance-futures", "BTCUSDT", "1m")
    feed = LiveFeed(db, clock=ManualClock(now))
    first = feed.look((btc,))
    assert first.updates == {} and not first.new_series  # everything in the file was written long ago
    sink = DuckDBSink(db, shared=True)

    def write(frame):
        sink.write("candles", frame)
        sink.flush()

    after = T0 + timedelta(minutes=N)
    write(chart_db.make_candles(n=2, start=after, emitted=now))
    look = feed.look((btc,))
    assert look.updates[btc]["t"] == [int(after.timestamp()), int(after.timestamp()) + 60]
    assert feed.look((btc,)).updates == {}
    late = after + timedelta(minutes=2)
    write(chart_db.make_candles(n=1, start=late, emitted=now - timedelta(seconds=20)))
    assert feed.look((btc,)).updates[btc]["t"] == [int(late.timestamp())]
    write(chart_db.make_candles("DOGEUSDT", n=1, start=after, emitted=now))
    look = feed.look((btc,))
    assert look.new_series and look.updates == {}
    sink.close()
