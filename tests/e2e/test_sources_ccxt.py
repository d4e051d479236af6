"""The ccxt source against local OKX and Bybit stand-ins (their documented REST markets and WebSocket trade
protocols on 127.0.0.1, reached through ccxt itself): symbols in either form, labels, instruments, accounting,
repeats as duplicates, a dropped connection as a counted gap, bad trades quarantined; and `mdstream stream --source
ccxt` whose candles equal a Decimal aggregation of the trades the venue sent."""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import replace
from datetime import timedelta

import polars as pl
import pytest

from mdstream.contract import columns as c
from mdstream.contract.clock import WallClock
from mdstream.contract.errors import ConfigError
from mdstream.contract.feed import GAP_DISCONNECT, GAP_SILENT, GAP_STARTUP
from mdstream.sources.ccxt_source import CcxtSource
from support.ccxt_venues import (
    BybitServer,
    OkxServer,
    Trade,
    VenueServer,
    bybit_linear,
    bybit_spot,
    make_trades,
    okx_spot,
    okx_swap,
)
from support.contracts import assert_matches_decimal, decimal_candles
from support.stream_cli import CliStream
from support.stream_helpers import read_db

OKX_MARKETS = [okx_spot("BTC-USDT"), okx_swap("BTC-USDT-SWAP", "0.01"), okx_swap("ETH-USDT-SWAP", "0.1"),
               okx_swap("BTC-USD-SWAP", "100", inverse=True)]
BYBIT_MARKETS = {"linear": [bybit_linear("BTCUSDT", "BTC", "USDT"), bybit_linear("ETHUSDT", "ETH", "USDT")],
                 "spot": [bybit_spot("BTCUSDT", "BTC", "USDT")]}


def okx(trades: list[Trade], **kw) -> VenueServer:
    """An OKX stand-in with spot, linear and inverse swaps."""
    return OkxServer(trades, OKX_MARKETS, **kw)


def bybit(trades: list[Trade], **kw) -> VenueServer:
    """A Bybit stand-in with linear perpetuals and spot."""
    return BybitServer(trades, BYBIT_MARKETS, **kw)


VENUES = {
    # venue: (server factory, --exchange, symbols as given, venue symbols, label, UUID ids)
    "okx": (okx, "okx", ["BTC-USDT-SWAP", "ETH/USDT:USDT"], ["BTC-USDT-SWAP", "ETH-USDT-SWAP"], "okex-swap", False),
    "bybit": (bybit, "bybit", ["BTCUSDT", "ETH/USDT:USDT"], ["BTCUSDT", "ETHUSDT"], "bybit", True),
}


async def collect(source: CcxtSource, until, timeout: float = 20.0) -> list:
    """Chunks of the source until `until(status)` holds."""
    chunks = []
    deadline = time.monotonic() + timeout
    gen = source.chunks(WallClock())
    try:
        async for chunk in gen:
            chunks.append(chunk)
            if until(source.status) or time.monotonic() > deadline:
                break
    finally:
        await gen.aclose()
    return chunks


@pytest.mark.timeout(60)
@pytest.mark.parametrize("venue", list(VENUES))
def test_drop_and_repeats_give_a_counted_gap_and_duplicates(venue):
    factory, exchange, given, ids, label, uuids = VENUES[venue]
    trades = make_trades(ids, 90, uuid_ids=uuids)
    trades[40] = replace(trades[40], price="0")  # a venue's bad row: quarantined, never a tick

    async def scenario():
        server = await factory(trades, cut_after=50, overlap=8, rate=400).start()
        try:
            source = await asyncio.to_thread(CcxtSource, exchange, given, url=server.url, silence_timeout=3,
                                             backoff_initial=0.05)
            chunks = await collect(source, lambda s: s.accepted + sum(s.quarantined.values()) >= len(trades))
            return source, chunks, server
        finally:
            await server.stop()

    source, chunks, server = asyncio.run(scenario())
    assert source.exchange == label and source.symbols == tuple(ids)
    status = source.status
    # every trade ccxt handed over is accounted for exactly once
    assert status.received == status.accepted + status.duplicates + sum(status.quarantined.values()) \
        + sum(status.ignored.values())
    assert status.received == server.pushed == len(trades) + 8
    assert status.duplicates == 8 and status.accepted == len(trades) - 1
    assert status.quarantined == {"price not a positive number": 1}
    assert status.reconnects == 1 and server.connections == 2
    gaps = [g for ch in chunks for g in ch.gaps]
    closed = [g for g in gaps if g.end is not None]
    assert [g.reason for g in closed] == [GAP_STARTUP, GAP_DISCONNECT]
    drop = closed[1]
    assert drop.symbols == tuple(ids) and drop.start <= drop.end
    # the gap starts at the last trade before the drop and ends at the first one after it
    sent = [server.sent[i] for i in sorted(server.sent)]
    assert drop.start == max(pl.Series([t.ts for t in sent[:50]]).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"))
    ticks = pl.concat([ch.ticks for ch in chunks if ch.ticks is not None and ch.ticks.height])
    assert ticks[c.EXCHANGE].unique().to_list() == [label]
    got = set(zip(ticks[c.SYMBOL], ticks[c.ID], ticks[c.SIDE], ticks[c.PRICE], ticks[c.AMOUNT],
                  ticks[c.TIMESTAMP].dt.epoch("ms")))
    want = {(t.symbol, t.id, t.side, float(t.price), float(t.amount), t.ts) for t in sent if t.price != "0"}
    assert got == want


def test_symbols_in_either_form_and_labels_by_market():
    async def scenario():
        server = await bybit([]).start()
        try:
            url = server.url
            derivative = await asyncio.to_thread(CcxtSource, "bybit", ["BTCUSDT"], url=url)
            spot = await asyncio.to_thread(CcxtSource, "bybit", ["BTC/USDT"], url=url)
            spot_tardis = await asyncio.to_thread(CcxtSource, "bybit-spot", ["BTCUSDT"], url=url)
            with pytest.raises(ConfigError, match="span markets"):
                await asyncio.to_thread(CcxtSource, "bybit", ["BTCUSDT", "BTC/USDT"], url=url)
            with pytest.raises(ConfigError, match="unknown symbol 'DOGEUSDT'"):
                await asyncio.to_thread(CcxtSource, "bybit", ["DOGEUSDT"], url=url)
            with pytest.raises(ConfigError, match="unknown ccxt exchange"):
                CcxtSource("nosuchvenue", ["BTCUSDT"], url=url)
            return derivative, spot, spot_tardis
        finally:
            await server.stop()

    derivative, spot, spot_tardis = asyncio.run(scenario())
    # Bybit's BTCUSDT is both the linear perpetual and the spot pair: the id alone means the perpetual (as
    # Tardis' `bybit` does), the unified form or bybit-spot the spot pair
    assert (derivative.exchange, derivative.symbols, derivative.instruments[0].kind) == ("bybit", ("BTCUSDT",), "linear")
    assert (spot.exchange, spot.symbols, spot.instruments[0].kind) == ("bybit-spot", ("BTCUSDT",), "spot")
    assert spot_tardis.exchange == "bybit-spot"


def test_instruments_from_ccxt_markets():
    async def scenario():
        server = await okx([]).start()
        try:
            linear = await asyncio.to_thread(CcxtSource, "okx", ["BTC-USDT-SWAP"], url=server.url)
            inverse = await asyncio.to_thread(CcxtSource, "okx", ["BTC/USD:BTC"], url=server.url)
            spot = await asyncio.to_thread(CcxtSource, "okex", ["BTC-USDT"], url=server.url)
            return linear, inverse, spot
        finally:
            await server.stop()

    linear, inverse, spot = asyncio.run(scenario())
    lin, inv, spo = linear.instruments[0], inverse.instruments[0], spot.instruments[0]
    assert (lin.exchange, lin.symbol, lin.kind, lin.contract_size, lin.contract_currency) == \
        ("okex-swap", "BTC-USDT-SWAP", "linear", 0.01, "BTC")
    assert (inv.exchange, inv.symbol, inv.kind, inv.contract_size, inv.contract_currency) == \
        ("okex-swap", "BTC-USD-SWAP", "inverse", 100.0, "USD")
    assert (spo.exchange, spo.symbol, spo.kind, spo.contract_size) == ("okex", "BTC-USDT", "spot", 1.0)


CONTRACT = {"okx": {"BTC-USDT-SWAP": 0.01, "ETH-USDT-SWAP": 0.1}, "bybit": {"BTCUSDT": 1.0, "ETHUSDT": 1.0}}


@pytest.mark.slow
@pytest.mark.timeout(150)
@pytest.mark.parametrize("venue", list(VENUES))
def test_stream_cli_candles_equal_decimal_of_the_venue_trades(venue, tmp_path, monkeypatch):
    monkeypatch.setenv("MDSTREAM_INSTRUMENTS_FETCH", "off")  # contract sizes come from ccxt's markets alone
    factory, exchange, given, ids, label, uuids = VENUES[venue]
    count = 4_000  # 20 s at 200 trades/s: at least one whole 15 s window per symbol
    trades = make_trades(ids, count, uuid_ids=uuids)

    async def scenario():
        server = await factory(trades, rate=200, batch=4, cut_after=count // 2, overlap=20,
                               resend_on_connect=50).start()
        job = CliStream(tmp_path, "ccxt", ",".join(given), server.url, "--exchange", exchange, "--timeframes", "15s")
        try:
            await job.start()
            await job.wait_for(lambda: job.accounting(label)["accepted"] >= count, "every trade", timeout=90)
            # the window of the last trade closes (its end + lateness, plus the feed's lag and a loaded machine's fold)
            await asyncio.sleep(15 - time.time() % 15 + 3.0)
            accounting = await asyncio.to_thread(job.accounting, label)
            code = await job.stop(signal.SIGTERM)
            return code, job, accounting, server
        finally:
            await job.kill()
            await server.stop()

    code, job, accounting, server = asyncio.run(scenario())
    assert code == 0, job.output()[-3000:]
    # the drop was seen and counted; the re-sent trades are duplicates, not volume
    assert accounting["duplicates"] >= 20 and accounting["reconnects"] >= 1, accounting
    assert accounting["received"] == accounting["accepted"] + accounting["duplicates"], accounting
    assert accounting["accepted"] == count, accounting

    ticks = read_db(job.db, "SELECT * FROM ticks ORDER BY symbol, timestamp, id")
    assert ticks.height == count and ticks[c.EXCHANGE].unique().to_list() == [label]
    candles = read_db(job.db, "SELECT * FROM candles_latest WHERE timeframe = '15s' AND trades > 0")
    sent = [server.sent[i] for i in sorted(server.sent)]
    checked = 0
    for symbol, size in CONTRACT[venue].items():
        # the truth is what the venue sent (its decimal text), in the order it sent it
        mine = [t for t in sent if t.symbol == symbol]
        truth = pl.DataFrame({c.TIMESTAMP: [t.ts * 1000 for t in mine], c.SIDE: [t.side for t in mine],
                              c.PRICE: [float(t.price) for t in mine], c.AMOUNT: [float(t.amount) for t in mine]})
        expected = decimal_candles(truth.sort(c.TIMESTAMP, maintain_order=True), "15s", "linear", size)
        emitted = candles.filter(pl.col(c.SYMBOL) == symbol)
        last_end = emitted[c.TIMESTAMP_IN].max() + timedelta(seconds=15)
        closed = {s: w for s, w in expected.items() if s + timedelta(seconds=15) <= last_end}
        assert len(closed) == len(expected) >= 2, (symbol, sorted(expected), last_end)
        checked += assert_matches_decimal(emitted, closed)
    assert checked >= 4


@pytest.mark.timeout(60)
@pytest.mark.parametrize("venue", list(VENUES))
def test_a_burst_across_symbols_is_read_whole(venue):
    """Messages of several symbols arriving between two reads: ccxt answers a watch with one symbol's trades, the
    others wait in its stores; every one is read, none waits for a later message of its symbol."""
    factory, exchange, given, ids, label, uuids = VENUES[venue]
    trades = make_trades(ids, 400, uuid_ids=uuids)

    async def scenario():
        server = await factory(trades, rate=1e6, batch=4).start()
        try:
            source = await asyncio.to_thread(CcxtSource, exchange, given, url=server.url, silence_timeout=2)
            await collect(source, lambda s: s.accepted >= len(trades), timeout=4)
            return source
        finally:
            await server.stop()

    status = asyncio.run(scenario()).status
    assert (status.received, status.accepted, status.duplicates) == (len(trades), len(trades), 0)


@pytest.mark.timeout(60)
def test_a_silent_connection_is_a_gap_and_is_replaced():
    """The venue keeps the connection open but stops sending: after --silence-timeout the source drops it, reports
    a `silent feed` gap and reconnects; the trades after it close the gap."""
    factory, exchange, given, ids, label, uuids = VENUES["okx"]
    trades = make_trades(ids, 60)

    async def scenario():
        server = await factory(trades, cut_after=30, stall=True, rate=400).start()
        try:
            source = await asyncio.to_thread(CcxtSource, exchange, given, url=server.url, silence_timeout=1,
                                             backoff_initial=0.05)
            chunks = await collect(source, lambda s: s.accepted >= len(trades))
            return source, chunks, server
        finally:
            await server.stop()

    source, chunks, server = asyncio.run(scenario())
    assert source.status.accepted == len(trades) and source.status.reconnects == 1 and server.connections == 2
    closed = [g for ch in chunks for g in ch.gaps if g.end is not None]
    assert [g.reason for g in closed] == [GAP_STARTUP, GAP_SILENT]
    assert (closed[1].end - closed[1].start).total_seconds() >= 1.0
