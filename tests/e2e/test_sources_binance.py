"""Binance source against a local server replaying real recorded trade messages."""

from __future__ import annotations

import asyncio

import orjson
import polars as pl
import pytest

from mdstream.contract import columns as c
from mdstream.contract.clock import WallClock
from mdstream.contract.feed import GAP_DISCONNECT, GAP_SILENT, GAP_STARTUP
from mdstream.jobs.batcher import source_batches
from mdstream.sources.binance import BinanceSource
from support.ws_replay import ReplayServer


@pytest.fixture()
def spot_files(real_data):
    """The first recorded hour of BTCUSDT and ETHUSDT spot messages."""
    folder = real_data / "binance_ws"
    return [folder / "spot_btcusdt_20240808.gz", folder / "spot_ethusdt_20240808.gz"]


def expected_trades(server: ReplayServer, streams: set[str]) -> pl.DataFrame:
    """The recorded trades of `streams` as the source should emit them (symbol, id, T, price, amount, side)."""
    rows = [orjson.loads(raw)["data"] for raw in server.trades(streams)]
    return pl.DataFrame(
        {
            c.SYMBOL: [r["s"] for r in rows],
            c.ID: [str(r["t"]) for r in rows],
            "T": [r["T"] for r in rows],
            c.PRICE: [float(r["p"]) for r in rows],
            c.AMOUNT: [float(r["q"]) for r in rows],
            c.SIDE: ["sell" if r["m"] else "buy" for r in rows],
        }
    )


def as_emitted(ticks: pl.DataFrame) -> pl.DataFrame:
    """Emitted ticks in the shape of `expected_trades`."""
    return ticks.select(
        c.SYMBOL, c.ID, (pl.col(c.TIMESTAMP).dt.epoch("us") // 1000).alias("T"), c.PRICE, c.AMOUNT, c.SIDE
    )


async def collect(source, want: int, on_progress=None, timeout: float = 20.0):
    """Batches until `want` ticks arrived; `on_progress(count)` may act on the server between batches."""
    ticks, gaps = [], []
    count = 0
    batches = source_batches(source, WallClock())
    try:
        async with asyncio.timeout(timeout):
            async for batch in batches:
                ticks.append(batch.ticks)
                gaps.extend(batch.gaps)
                count += batch.ticks.height
                if on_progress is not None:
                    await on_progress(count)
                if count >= want:
                    break
    finally:
        await batches.aclose()
    return pl.concat(ticks), gaps


def test_ticks_equal_the_recorded_trades_of_the_requested_streams(spot_files):
    async def run():
        async with ReplayServer(spot_files) as server:
            expected = expected_trades(server, {"btcusdt@trade"})
            source = BinanceSource(["btcusdt"], url=server.url)
            ticks, gaps = await collect(source, expected.height)
            assert server.paths[-1] == "/stream?streams=btcusdt@trade"
            return expected, ticks, gaps

    expected, ticks, gaps = asyncio.run(run())
    assert ticks.height == expected.height == 9757
    assert as_emitted(ticks).equals(expected)
    assert ticks.get_column(c.EXCHANGE).unique().to_list() == ["binance"]
    assert ticks.get_column(c.LOCAL_TIMESTAMP).null_count() == 0
    assert [g.reason for g in gaps] == [GAP_STARTUP, GAP_STARTUP]  # opened, then closed by the first trade
    # the closing gap repeats the open one's start; the recording is older than the clock, so end == start
    assert gaps[1].start == gaps[0].start and gaps[1].end >= gaps[1].start


def test_reconnect_after_server_restart_dedupes_overlap_and_loses_nothing(spot_files):
    async def run():
        server = ReplayServer(spot_files)
        await server.start(limit=6000)
        expected = expected_trades(server, {"btcusdt@trade", "ethusdt@trade"})
        restarted = False

        async def outage(count):
            nonlocal restarted
            if not restarted and server.position >= 6000 and count >= server.sent:
                restarted = True
                await server.stop()
                await server.start(overlap=300)  # re-sends 300 trades the client already has

        source = BinanceSource(["BTCUSDT", "ETHUSDT"], url=server.url, backoff_initial=0.05)
        try:
            ticks, gaps = await collect(source, expected.height, outage)
        finally:
            await server.stop()
        return expected, ticks, gaps, source, server

    expected, ticks, gaps, source, server = asyncio.run(run())
    assert source.feed.connects == 2
    status = source.status.snapshot()
    assert status["reconnects"] == 1 and status["duplicates"] == 300 and status["up"]
    assert status["received"] == status["accepted"] + status["duplicates"]
    assert server.sent == expected.height + 300
    assert ticks.height == expected.height
    assert ticks.get_column(c.ID).n_unique() == ticks.height
    key = [c.SYMBOL, c.ID]
    assert as_emitted(ticks).sort(key).equals(expected.sort(key))
    outage = [g for g in gaps if g.reason == GAP_DISCONNECT]
    assert len(outage) == 2 and outage[0].end is None and outage[1].end is not None
    assert outage[1].symbols == ("BTCUSDT", "ETHUSDT")
    assert outage[1].start <= outage[1].end
    assert not [g for g in gaps if g.reason.startswith("trade id jump")]


def test_skipped_trades_after_reconnect_are_reported_as_id_jump(spot_files):
    async def run():
        server = ReplayServer(spot_files[:1])
        await server.start(limit=2000)
        done = False

        async def outage(count):
            nonlocal done
            if not done and count >= 2000:
                done = True
                await server.stop()
                await server.start(skip=7)

        source = BinanceSource(["BTCUSDT"], url=server.url, backoff_initial=0.05)
        try:
            return await collect(source, 9757 - 7, outage)
        finally:
            await server.stop()

    ticks, gaps = asyncio.run(run())
    assert ticks.height == 9757 - 7
    jumps = [g for g in gaps if g.reason.startswith("trade id jump")]
    assert len(jumps) == 1
    last_before = ticks.get_column(c.ID).cast(pl.Int64)[1999]
    assert jumps[0].reason == f"trade id jump {last_before}->{last_before + 8}"
    assert jumps[0].symbols == ("BTCUSDT",)
    assert jumps[0].start <= jumps[0].end


def test_silent_feed_triggers_watchdog_reconnect(spot_files):
    async def run():
        server = ReplayServer(spot_files[:1])
        await server.start(limit=500)

        async def unblock(count):
            if len(server.paths) >= 2:
                server.limit = None  # the client reconnected on its own: send the rest

        source = BinanceSource(["BTCUSDT"], url=server.url, silence_timeout=0.4, backoff_initial=0.05)
        try:
            ticks, gaps = await collect(source, 9757, unblock)
        finally:
            await server.stop()
        return ticks, gaps, source

    ticks, gaps, source = asyncio.run(run())
    assert ticks.height == 9757
    assert source.feed.connects >= 2
    assert GAP_SILENT in [g.reason for g in gaps]


def test_coin_m_source_reads_the_delivery_host_and_labels_its_trades_binance_delivery():
    from support.ws_faults import FaultServer, generated_messages

    assert BinanceSource(["btcusd_perp", "ethusd_perp"], market="binance-delivery").stream_url() == \
        "wss://dstream.binance.com/stream?streams=btcusd_perp@trade/ethusd_perp@trade"

    async def run():
        server = await FaultServer(generated_messages("binance-delivery", ["BTCUSD_PERP", "ETHUSD_PERP"], 400),
                                   rate=300).start()
        source = BinanceSource(["BTCUSD_PERP", "ETHUSD_PERP"], market="binance-delivery", url=server.url,
                               backoff_initial=0.05)

        async def outage(count):
            if count >= 150 and len(server.paths) == 1:
                await server.drop(overlap=20)

        try:
            ticks, gaps = await collect(source, 400, outage)
        finally:
            await server.stop()
        return ticks, gaps, source, server

    ticks, gaps, source, server = asyncio.run(run())
    assert ticks.height == 400 and ticks[c.ID].n_unique() == 400
    assert ticks[c.EXCHANGE].unique().to_list() == ["binance-delivery"]
    assert set(ticks[c.SYMBOL].unique()) == {"BTCUSD_PERP", "ETHUSD_PERP"}
    assert (ticks[c.AMOUNT] == ticks[c.AMOUNT].round()).all()  # contracts
    assert source.status.reconnects == 1 and source.status.duplicates >= 1
    assert GAP_DISCONNECT in [g.reason for g in gaps]


def test_a_message_of_megabytes_is_taken_in_not_a_reason_to_drop_the_connection():
    from support.damage import dumps, trade_message
    from support.ws_faults import FaultServer, generated_messages

    async def run():
        server = await FaultServer(generated_messages("binance-futures", ["BTCUSDT"], 20), rate=100).start()
        big = trade_message("BTCUSDT", 99_999_999, 60_000.0, "0.1", 1_723_161_255_208, futures=True)
        big["data"]["zz"] = "x" * 3_000_000
        server.inject([dumps(big), "{" * 3_000_000], "mixed")
        source = BinanceSource(["BTCUSDT"], market="binance-futures", url=server.url)
        try:
            ticks, _ = await collect(source, 21)
        finally:
            await server.stop()
        return ticks, source

    ticks, source = asyncio.run(run())
    assert "99999999" in ticks[c.ID].to_list()
    status = source.status.snapshot()
    assert status["reconnects"] == 0 and status["quarantined"] == {"malformed JSON": 1}
