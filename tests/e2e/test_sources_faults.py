"""`mdstream stream` against local servers that drop, stall, lag, damage, duplicate and reorder Binance feeds (real
spot recordings, generated USD-M and COIN-M trades): no crash, every message accounted for in the metrics, no
valid trade lost, reconnects counted, /healthz 503 while the feed is down."""

from __future__ import annotations

import asyncio
import time

import duckdb
import pytest

from support.damage import KINDS
from support.stream_cli import CliStream
from support.ws_faults import FaultServer, generated_messages, recorded_messages

pytestmark = pytest.mark.timeout(120)


@pytest.fixture()
def spot_messages(real_data):
    """The first 2400 recorded BTCUSDT and ETHUSDT spot trade messages."""
    folder = real_data / "binance_ws"
    return recorded_messages([folder / "spot_btcusdt_20240808.gz", folder / "spot_ethusdt_20240808.gz"], limit=2400)


async def reached(server: FaultServer, position: int) -> None:
    """Wait until the server has played `position` messages."""
    while server.position < position:
        await asyncio.sleep(0.02)


async def down_and_back(job: CliStream, source: str) -> dict:
    """While the feed is down: /healthz turns 503 naming the feed, and the feed-up gauge reads 0; returns the body."""
    code, body = await job.wait_for(lambda: (lambda h: h if h[0] == 503 else None)(job.health()), "/healthz 503")
    assert body["status"] == "feed down" and source in body["reason"], body
    assert job.total("mdstream_feed_up", source=source) == 0
    return body


async def settle(job: CliStream, server: FaultServer, source: str) -> dict[str, float]:
    """Once the server sent everything: wait until the job received every frame, then return its accounting."""
    while not server.done:
        await asyncio.sleep(0.05)
    await job.wait_for(lambda: job.accounting(source)["received"] >= server.sent_frames(), "every frame received")
    counts = job.accounting(source)
    # and the job has processed every accepted trade (a stop drops what is still buffered for the next batch)
    await job.wait_for(lambda: job.total("mdstream_ticks_total") >= counts["accepted"], "every trade processed")
    return counts


def assert_accounted(counts: dict[str, float], server: FaultServer) -> None:
    """received = accepted + quarantined + duplicates + ignored, and received = frames the server sent."""
    assert counts["received"] == server.sent_frames()
    assert counts["received"] == counts["accepted"] + counts["quarantined"] + counts["duplicates"] + counts["ignored"], counts


def stored_trades(job: CliStream, exchange: str) -> set[tuple[str, str]]:
    """(symbol, id) of the ticks the job stored (read after it exited)."""
    con = duckdb.connect(str(job.db), read_only=True)
    try:
        rows = con.sql("SELECT exchange, symbol, id FROM ticks").fetchall()
    finally:
        con.close()
    assert {r[0] for r in rows} == {exchange}
    assert len(rows) == len({(r[1], r[2]) for r in rows}), "a trade stored twice"
    return {(r[1], r[2]) for r in rows}


@pytest.mark.slow
def test_spot_recording_through_damage_duplicates_reordering_and_a_drop(spot_messages, tmp_path):
    async def scenario():
        server = await FaultServer(spot_messages, rate=800).start()
        job = CliStream(tmp_path, "binance", "BTCUSDT,ETHUSDT", server.url)
        try:
            await job.start()
            await reached(server, 300)
            server.damage(len(KINDS))  # every kind of damage once
            server.duplicate(40)
            server.reorder(40)
            await reached(server, 1000)
            dropping = asyncio.ensure_future(server.drop(down_for=3.0, overlap=60))
            body = await down_and_back(job, "binance")
            await dropping
            counts = await settle(job, server, "binance")
            assert_accounted(counts, server)
            assert counts["reconnects"] >= 1 and counts["duplicates"] >= 40 + 60 - 5
            assert counts["quarantined"] >= sum(k.expect == "quarantine" for k in KINDS)
            await job.wait_for(lambda: job.health()[0] == 200, "/healthz 200 after the reconnect")
            assert job.total("mdstream_feed_up", source="binance") == 1
            assert await job.stop() == 0
            return server, job, body
        finally:
            await job.kill()
            await server.stop()

    server, job, body = asyncio.run(scenario())
    assert "disconnect" in body["reason"]
    assert "Traceback" not in job.output()
    assert stored_trades(job, "binance") == server.expected_trades()


@pytest.mark.slow
def test_usdm_feed_through_a_stall_and_a_lag(tmp_path):
    messages = generated_messages("binance-futures", ["BTCUSDT", "ETHUSDT"], 1600, seed=1)

    async def scenario():
        server = await FaultServer(messages, rate=500).start()
        job = CliStream(tmp_path, "binance-futures", "BTCUSDT,ETHUSDT", server.url)
        try:
            await job.start()
            await reached(server, 300)
            server.stall(3.0)  # silent past --silence-timeout 1: the job reconnects on its own
            body = await down_and_back(job, "binance-futures")
            assert "silent" in body["reason"]
            await reached(server, 800)
            server.lag(2.0)  # trades now arrive 2 s after their event time
            counts = await settle(job, server, "binance-futures")
            assert_accounted(counts, server)
            assert counts["reconnects"] >= 1
            assert job.total("mdstream_source_quarantined_total", source="binance-futures",
                             reason="not an order-book trade (X=INSURANCE_FUND)") == 8
            assert await job.stop() == 0
            return server, job
        finally:
            await job.kill()
            await server.stop()

    server, job = asyncio.run(scenario())
    assert "Traceback" not in job.output()
    assert stored_trades(job, "binance-futures") == server.expected_trades()


@pytest.mark.slow
def test_coin_m_feed_is_labelled_binance_delivery_through_damage_and_a_drop(tmp_path):
    messages = generated_messages("binance-delivery", ["BTCUSD_PERP", "ETHUSD_PERP"], 1200, seed=2)

    async def scenario():
        server = await FaultServer(messages, rate=500).start()
        job = CliStream(tmp_path, "binance-delivery", "BTCUSD_PERP,ETHUSD_PERP", server.url)
        try:
            await job.start()
            await reached(server, 200)
            server.damage(60, kinds=KINDS[::3])
            server.inject(['{"result":null,"id":1}'], "ignored")
            await reached(server, 500)
            dropping = asyncio.ensure_future(server.drop(down_for=2.0, overlap=25))
            await down_and_back(job, "binance-delivery")
            await dropping
            counts = await settle(job, server, "binance-delivery")
            assert_accounted(counts, server)
            assert counts["reconnects"] >= 1 and counts["ignored"] >= 1
            # the first 15 s window closes by the clock once its end has passed
            await job.wait_for(lambda: job.total("mdstream_rows_written_total", kind="candles"), "a candle", timeout=40)
            assert await job.stop() == 0
            return server, job
        finally:
            await job.kill()
            await server.stop()

    server, job = asyncio.run(scenario())
    assert server.paths[0] == "/stream?streams=btcusd_perp@trade/ethusd_perp@trade"
    assert stored_trades(job, "binance-delivery") == server.expected_trades()
    con = duckdb.connect(str(job.db), read_only=True)
    try:
        amounts = con.sql("SELECT DISTINCT amount = round(amount) FROM ticks").fetchall()
        exchanges = con.sql("SELECT DISTINCT exchange FROM candles").fetchall()
    finally:
        con.close()
    assert amounts == [(True,)]  # whole contracts, as the venue reports them
    assert exchanges == [("binance-delivery",)]


@pytest.mark.slow
def test_fifteen_seconds_down_then_back_loses_no_trade_and_is_seen_by_monitoring(spot_messages, tmp_path):
    async def scenario():
        server = await FaultServer(spot_messages[:1200], rate=300).start()
        job = CliStream(tmp_path, "binance", "BTCUSDT,ETHUSDT", server.url, "--max-feed-down", "5")
        try:
            await job.start()
            await reached(server, 400)
            started = time.monotonic()
            dropping = asyncio.ensure_future(server.drop(down_for=15.0))
            body = await down_and_back(job, "binance")
            assert time.monotonic() - started >= 5  # not before --max-feed-down
            assert job.total("mdstream_feed_down_seconds", source="binance") >= 5
            age = job.total("mdstream_last_tick_age_seconds")
            await asyncio.sleep(2)
            assert job.total("mdstream_last_tick_age_seconds") >= age + 1.5  # keeps growing while silent
            await dropping
            counts = await settle(job, server, "binance")
            assert_accounted(counts, server)
            assert counts["reconnects"] >= 1 and job.total("mdstream_connect_failures_total", source="binance") >= 1
            assert await job.stop() == 0
            return server, job, body
        finally:
            await job.kill()
            await server.stop()

    server, job, body = asyncio.run(scenario())
    assert stored_trades(job, "binance") == server.expected_trades()


@pytest.mark.slow
def test_windows_that_close_while_the_feed_is_down_are_feed_not_quiet(spot_messages, tmp_path):
    """Depends on the engine deciding gaps when a window is emitted: a window that closes during an outage is
    `feed`, whatever trades arrive after the reconnect."""

    async def scenario():
        server = await FaultServer(spot_messages[:1500], rate=300).start()
        job = CliStream(tmp_path, "binance", "BTCUSDT,ETHUSDT", server.url, "--timeframes", "15s")
        try:
            await job.start()
            await reached(server, 400)
            await server.stop()
            cut = len(server.log)
            await asyncio.sleep(33.0)
            restart_ms = int(time.time() * 1000)
            await server.start()
            await settle(job, server, "binance")
            before = max(m["data"]["T"] for _, _, m in server.log if m and m["data"]["T"] < restart_ms)
            after = min(m["data"]["T"] for _, _, m in server.log[cut:] if m and m["data"]["T"] >= restart_ms)
            await job.wait_for(lambda: job.total("mdstream_rows_written_total", kind="candles"), "candles")
            assert await job.stop() == 0
            return before, after
        finally:
            await job.kill()
            await server.stop()

    before, after = asyncio.run(scenario())
    con = duckdb.connect(str(tmp_path / "job.duckdb"), read_only=True)
    try:
        inside = con.sql(
            "SELECT symbol, timestamp_in, gap, trades FROM candles_latest WHERE timeframe = '15s' "
            "AND epoch_ms(timestamp_in) >= $before AND epoch_ms(timestamp_in) + 15000 <= $after",
            params={"before": before, "after": after}).fetchall()
    finally:
        con.close()
    assert len(inside) >= 2, (before, after)  # a whole window of each symbol lay inside the outage
    assert {row[2] for row in inside} == {"feed"}, (before, after, [(r[0], str(r[1]), r[2], r[3]) for r in inside])
