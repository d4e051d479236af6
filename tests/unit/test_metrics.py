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
from mdstream.observe.metrics import (
    BatchHealth,
    StreamMetrics,
    default_host,
    start_metrics_server,
)

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
    metrics.reconnect()
    metrics.gap()
    metrics.late_trades(4)
    metrics.set_queue_depth(7)
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
    assert got[("mdstream_reconnects_total", ())] == 1
    assert got[("mdstream_gaps_total", ())] == 1
    assert got[("mdstream_late_trades_total", ())] == 4
    assert got[("mdstream_queue_depth", ())] == 7
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
