"""Stream metrics and the /metrics + /healthz server, exercised over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from mdstream.contract import columns as c
from mdstream.contract import schema
from mdstream.contract.clock import ManualClock
from mdstream.contract.feed import SourceChunk
from mdstream.observe.metrics import BatchHealth, StreamMetrics
from mdstream.observe.metrics_http import default_host, start_metrics_server
from mdstream.sources.status import MAX_LABELS, FeedStatus

T0 = datetime(2024, 8, 9, 0, 0, tzinfo=timezone.utc)


def ticks(rows: list[tuple[str, str, datetime]]) -> pl.DataFrame:
    frame = pl.DataFrame(
        {c.EXCHANGE: [r[0] for r in rows], c.SYMBOL: [r[1] for r in rows], c.TIMESTAMP: [r[2] for r in rows],
         c.PRICE: [100.0] * len(rows), c.AMOUNT: [1.0] * len(rows)},
    )
    return schema.conform(frame, schema.TICK_SCHEMA)


def get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as err:
        return err.code, err.read(), err.headers.get("Content-Type", "")


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture
def metrics() -> StreamMetrics:
    return StreamMetrics()


def scrape(metrics: StreamMetrics) -> dict[tuple[str, tuple], float]:
    """The registry as a Prometheus server reads it, over HTTP."""
    server = start_metrics_server(0, registry=metrics.registry)
    try:
        return samples(get(f"{server.url}/metrics")[1].decode())
    finally:
        server.stop()


def test_own_registry_not_global(metrics):
    other = StreamMetrics()  # a second instance must not collide with the first
    metrics.batch()
    assert other.snapshot()["batches_total"] == 0
    assert REGISTRY.get_sample_value("mdstream_batches_total") is None


def test_metrics_endpoint_over_http(metrics):
    now = T0 + timedelta(seconds=3)
    metrics.observe_ticks(ticks([("binance", "BTCUSDT", T0)] * 3 + [("binance", "ETHUSDT", T0 + timedelta(seconds=1))]), now)
    metrics.batch()
    metrics.rows_written("duckdb", "candles", 12)
    metrics.quarantined(2)
    metrics.gap()
    metrics.late_trades(4)
    metrics.clock = ManualClock(now)
    candles = schema.conform(pl.DataFrame({c.LATENCY_MS: [120.0, 900.0, None]}), schema.CANDLE_SCHEMA)
    metrics.observe_candles(candles)

    server = start_metrics_server(0, health=lambda: {"status": "ok"}, registry=metrics.registry)
    try:
        code, body, ctype = get(f"{server.url}/metrics")
    finally:
        server.stop()
    assert code == 200 and ctype.startswith("text/plain")
    got = samples(body.decode())
    assert got[("mdstream_ticks_total", (("exchange", "binance"), ("symbol", "BTCUSDT")))] == 3
    assert got[("mdstream_ticks_total", (("exchange", "binance"), ("symbol", "ETHUSDT")))] == 1
    assert got[("mdstream_batches_total", ())] == 1
    assert got[("mdstream_rows_written_total", (("kind", "candles"), ("sink", "duckdb")))] == 12
    assert got[("mdstream_quarantined_total", ())] == 2
    assert got[("mdstream_gaps_total", ())] == 1
    assert got[("mdstream_late_trades_total", ())] == 4
    assert got[("mdstream_last_tick_age_seconds", ())] == pytest.approx(2.0)
    assert got[("mdstream_emit_latency_seconds_count", ())] == 2
    assert got[("mdstream_emit_latency_seconds_sum", ())] == pytest.approx(1.02)
    assert got[("mdstream_emit_latency_seconds_bucket", (("le", "0.25"),))] == 1


def test_healthz_ok_then_stale_then_recovers():
    clock = ManualClock(T0)
    health = BatchHealth(clock, max_batch_age_s=10)
    server = start_metrics_server(0, host="127.0.0.1", health=health)
    try:
        code, body, _ = get(f"{server.url}/healthz")
        assert code == 200 and json.loads(body)["status"] == "starting"

        clock.advance(11)  # never produced a batch within the grace period
        code, body, _ = get(f"{server.url}/healthz")
        assert code == 503 and json.loads(body)["status"] == "stale"

        health.mark_batch()
        clock.advance(2)
        code, body, ctype = get(f"{server.url}/healthz")
        payload = json.loads(body)
        assert code == 200 and ctype == "application/json"
        assert payload["status"] == "ok" and payload["last_batch_age_s"] == pytest.approx(2.0) and payload["batches"] == 1

        clock.advance(30)
        code, body, _ = get(f"{server.url}/healthz")
        assert code == 503 and json.loads(body)["last_batch_age_s"] == pytest.approx(32.0)
    finally:
        server.stop()


def test_broken_health_probe_reads_unhealthy():
    def broken() -> dict:
        raise RuntimeError("sink gone")

    server = start_metrics_server(0, health=broken)
    try:
        code, body, _ = get(f"{server.url}/healthz")
        missing, _, _ = get(f"{server.url}/nope")
    finally:
        server.stop()
    assert code == 503 and "sink gone" in json.loads(body)["error"]
    assert missing == 404


def test_stop_releases_port():
    server = start_metrics_server(0)
    port = server.port
    server.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
    again = start_metrics_server(port)  # the port can be bound again right away
    again.stop()


def test_snapshot_sums_labelled_series(metrics):
    metrics.observe_ticks(ticks([("binance", "A", T0), ("binance", "B", T0), ("bybit", "A", T0)]), T0)
    metrics.rows_written("duckdb", "candles", 5)
    metrics.rows_written("duckdb", "ticks", 3)
    snap = metrics.snapshot()
    assert snap["ticks_total"] == 3 and snap["rows_written_total"] == 8
    metrics.observe_ticks(ticks([]), T0)  # empty batch: no change, no error
    assert metrics.snapshot()["ticks_total"] == 3


def test_host_from_environment(monkeypatch):
    monkeypatch.setenv("MDSTREAM_METRICS_HOST", "127.0.0.1")
    server = start_metrics_server(0)
    try:
        assert server.host == "127.0.0.1" and get(f"{server.url}/healthz")[0] == 200
    finally:
        server.stop()
    monkeypatch.delenv("MDSTREAM_METRICS_HOST")
    assert default_host() == "127.0.0.1"


def test_last_tick_age_keeps_growing_while_no_trade_arrives():
    clock = ManualClock(T0 + timedelta(seconds=1))
    metrics = StreamMetrics(clock=clock)
    assert scrape(metrics)[("mdstream_last_tick_age_seconds", ())] == 0.0  # no trade yet
    metrics.observe_ticks(ticks([("binance", "BTCUSDT", T0)]), clock.now())
    assert scrape(metrics)[("mdstream_last_tick_age_seconds", ())] == pytest.approx(1.0)
    clock.advance(41)  # silence: no batch, no call, and still the age moves
    assert scrape(metrics)[("mdstream_last_tick_age_seconds", ())] == pytest.approx(42.0)


def test_feed_state_and_accounting_per_source():
    metrics = StreamMetrics()
    feed = FeedStatus("binance-delivery")
    metrics.watch(feed)
    got = scrape(metrics)
    assert got[("mdstream_feed_up", (("source", "binance-delivery"),))] == 0  # not connected yet
    feed.connected()
    feed.lost("disconnect: connection reset")
    feed.connected()
    feed.lost("disconnect: refused", failed=True)
    feed.connected()
    bad = schema.conform(pl.DataFrame({c.Q_REASON: ["symbol not subscribed", "malformed JSON", "malformed JSON"]}),
                         schema.QUARANTINE_SCHEMA)
    feed.record(SourceChunk(ticks=ticks([("binance-delivery", "BTCUSD_PERP", T0)] * 4), quarantine=bad, received=10,
                            duplicates=1, ignored={"aggTrade": 1, "reply": 1}))
    got = scrape(metrics)
    source = (("source", "binance-delivery"),)
    assert got[("mdstream_reconnects_total", source)] == 2
    assert got[("mdstream_connect_failures_total", source)] == 1
    assert got[("mdstream_feed_up", source)] == 1 and got[("mdstream_feed_down_seconds", source)] == 0
    assert got[("mdstream_source_received_total", source)] == 10
    assert got[("mdstream_source_accepted_total", source)] == 4
    assert got[("mdstream_source_duplicates_total", source)] == 1
    assert got[("mdstream_source_quarantined_total", (("reason", "malformed JSON"), *source))] == 2
    assert got[("mdstream_source_quarantined_total", (("reason", "symbol not subscribed"), *source))] == 1
    assert got[("mdstream_source_ignored_total", (*source, ("type", "aggTrade")))] == 1
    # received = accepted + quarantined + duplicates + ignored, from the metrics alone
    quarantined = sum(v for (name, _), v in got.items() if name == "mdstream_source_quarantined_total")
    ignored = sum(v for (name, _), v in got.items() if name == "mdstream_source_ignored_total")
    assert 10 == 4 + quarantined + 1 + ignored
    feed.lost("silent feed")
    assert scrape(metrics)[("mdstream_feed_up", source)] == 0


def test_labels_from_the_feed_are_capped():
    feed = FeedStatus("binance")
    feed.record(SourceChunk(received=100, ignored={f"type-{i}": 1 for i in range(100)}))
    ignored = feed.snapshot()["ignored"]
    assert len(ignored) == MAX_LABELS + 1 and ignored["other"] == 100 - MAX_LABELS
    assert sum(ignored.values()) == 100


def test_healthz_503_with_the_reason_while_the_feed_is_down_too_long():
    clock = ManualClock(T0)
    mono = [100.0]
    feed = FeedStatus("binance", monotonic=lambda: mono[0])
    health = BatchHealth(clock, max_batch_age_s=10, feed=feed, max_feed_down_s=5)
    server = start_metrics_server(0, host="127.0.0.1", health=health)
    try:
        feed.connected()
        health.mark_batch()
        feed.lost("disconnect: connection reset")
        mono[0] = 103.0  # 3 s down: within the limit
        code, body, _ = get(f"{server.url}/healthz")
        assert code == 200 and json.loads(body)["feed"]["up"] is False
        mono[0] = 107.0
        code, body, _ = get(f"{server.url}/healthz")
        payload = json.loads(body)
        assert code == 503 and payload["status"] == "feed down"
        assert "binance down for 7.0s" in payload["reason"] and "connection reset" in payload["reason"]
        feed.connected()
        code, body, _ = get(f"{server.url}/healthz")
        assert code == 200 and json.loads(body)["status"] == "ok"
    finally:
        server.stop()
