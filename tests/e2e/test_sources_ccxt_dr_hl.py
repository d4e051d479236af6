"""The ccxt source against local Deribit and Hyperliquid stand-ins (their documented REST markets and WebSocket
trade protocols on 127.0.0.1, reached through ccxt itself): symbols in the venue's form and ccxt's, labels,
instruments as the venue's trades count them, accounting, repeats as duplicates, a dropped connection as a counted
gap, bad trades quarantined; and `mdstream stream --source ccxt` whose candles equal a Decimal aggregation of the
trades the venue sent."""

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
from mdstream.contract.feed import GAP_DISCONNECT, GAP_STARTUP
from mdstream.sources.ccxt_source import CcxtSource
from support.ccxt_venues import Trade, VenueServer
from support.ccxt_venues_dr_hl import DeribitServer, HyperliquidServer, deribit_trades, hyperliquid_trades
from support.contracts import assert_matches_decimal, decimal_candles
from support.stream_cli import CliStream
from support.stream_helpers import read_db


def deribit(trades: list[Trade], **kw) -> VenueServer:
    """A Deribit stand-in with the BTC and ETH inverse perpetuals and the BTC USDC-margined linear one."""
    return DeribitServer(trades, **kw)


def hyperliquid(trades: list[Trade], **kw) -> VenueServer:
    """A Hyperliquid stand-in with the BTC and ETH perpetuals and two spot pairs (PURR/USDC and @1, HFUN/USDC)."""
    return HyperliquidServer(trades, **kw)


VENUES = {
    # venue: (server factory, trades maker, --exchange, symbols as given, the same in ccxt's unified form, venue
    #         symbols, label, {venue symbol: (kind, contract size, contract currency)})
    "deribit": (deribit, deribit_trades, "deribit", ["BTC-PERPETUAL", "ETH/USD:ETH"], ["BTC/USD:BTC", "ETH/USD:ETH"],
                ["BTC-PERPETUAL", "ETH-PERPETUAL"], "deribit",
                # amounts are USD: one unit is 1 USD, though ccxt's contractSize is 10 USD for BTC
                {"BTC-PERPETUAL": ("inverse", 1.0, "USD"), "ETH-PERPETUAL": ("inverse", 1.0, "USD")}),
    # Hyperliquid names a perpetual by its coin (ccxt's id is the asset index, "0" for BTC): ticks carry BTC, ETH
    "hyperliquid": (hyperliquid, hyperliquid_trades, "hyperliquid", ["BTC", "ETH/USDC:USDC"],
                    ["BTC/USDC:USDC", "ETH/USDC:USDC"], ["BTC", "ETH"], "hyperliquid",
                    {"BTC": ("linear", 1.0, "BTC"), "ETH": ("linear", 1.0, "ETH")}),
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
def test_symbols_labels_and_instruments_as_the_venue_counts_them(venue):
    factory, make, exchange, given, unified_form, ids, label, kinds = VENUES[venue]

    async def scenario():
        server = await factory([]).start()
        try:
            both = await asyncio.to_thread(CcxtSource, exchange, given, url=server.url)
            unified = await asyncio.to_thread(CcxtSource, exchange, unified_form, url=server.url)
            with pytest.raises(ConfigError, match="unknown symbol 'NOSUCH'"):
                await asyncio.to_thread(CcxtSource, exchange, ["NOSUCH"], url=server.url)
            return both, unified, server
        finally:
            await server.stop()

    both, unified, server = asyncio.run(scenario())
    assert server.unknown == []  # ccxt asked only what the stand-in answers
    assert (both.exchange, both.symbols) == (unified.exchange, unified.symbols) == (label, tuple(ids))
    got = {i.symbol: (i.kind, i.contract_size, i.contract_currency) for i in both.instruments}
    assert got == kinds and both.instruments == unified.instruments and both.unified == tuple(unified_form)


def test_deribit_contract_size_is_the_unit_of_its_trade_amounts():
    """ccxt reports Deribit's contract sizes (10 USD for BTC-PERPETUAL, 0.001 BTC for BTC_USDC-PERPETUAL), but
    Deribit's trades count USD (inverse) or coins (linear): one unit of amount is 1 USD or 1 BTC."""
    async def scenario():
        server = await deribit([]).start()
        try:
            inverse = await asyncio.to_thread(CcxtSource, "deribit", ["BTC/USD:BTC"], url=server.url)
            linear = await asyncio.to_thread(CcxtSource, "deribit", ["BTC_USDC-PERPETUAL"], url=server.url)
            return inverse, linear
        finally:
            await server.stop()

    inverse, linear = asyncio.run(scenario())
    assert (inverse._markets["BTC/USD:BTC"]["contractSize"], linear._markets["BTC/USDC:USDC"]["contractSize"]) \
        == (10.0, 0.001)
    inv, lin = inverse.instruments[0], linear.instruments[0]
    assert (inv.symbol, inv.kind, inv.contract_size, inv.contract_currency, inv.base_asset, inv.quote_asset) == \
        ("BTC-PERPETUAL", "inverse", 1.0, "USD", "BTC", "USD")
    assert (lin.symbol, lin.kind, lin.contract_size, lin.contract_currency, lin.base_asset, lin.quote_asset) == \
        ("BTC_USDC-PERPETUAL", "linear", 1.0, "BTC", "BTC", "USDC")


def test_hyperliquid_markets_by_the_names_its_api_uses():
    """A perpetual by its coin (not ccxt's asset index), a spot pair by its name (PURR/USDC, or @1 for HFUN/USDC)
    or ccxt's unified form; ticks carry the venue's name."""
    async def scenario():
        server = await hyperliquid([]).start()
        try:
            url = server.url
            perp = await asyncio.to_thread(CcxtSource, "hyperliquid", ["btc"], url=url)
            spot = await asyncio.to_thread(CcxtSource, "hyperliquid", ["@1", "PURR/USDC"], url=url)
            spot_unified = await asyncio.to_thread(CcxtSource, "hyperliquid", ["HFUN/USDC"], url=url)
            with pytest.raises(ConfigError, match="unknown symbol '0'"):
                await asyncio.to_thread(CcxtSource, "hyperliquid", ["0"], url=url)
            return perp, spot, spot_unified, server
        finally:
            await server.stop()

    perp, spot, spot_unified, server = asyncio.run(scenario())
    assert server.unknown == []
    assert (perp.symbols, perp.unified, perp.instruments[0].kind) == (("BTC",), ("BTC/USDC:USDC",), "linear")
    assert (spot.symbols, spot.unified) == (("@1", "PURR/USDC"), ("HFUN/USDC", "PURR/USDC"))
    assert [(i.symbol, i.kind, i.base_asset, i.quote_asset) for i in spot.instruments] == \
        [("@1", "spot", "HFUN", "USDC"), ("PURR/USDC", "spot", "PURR", "USDC")]
    assert spot_unified.symbols == ("@1",)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("venue", list(VENUES))
def test_drop_and_repeats_give_a_counted_gap_and_duplicates(venue):
    factory, make, exchange, given, _, ids, label, kinds = VENUES[venue]
    trades = make(90)
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
    assert source.exchange == label and source.symbols == tuple(ids) and server.unknown == []
    status = source.status
    # every trade ccxt handed over is accounted for exactly once
    assert status.received == status.accepted + status.duplicates + sum(status.quarantined.values()) \
        + sum(status.ignored.values())
    assert status.received == server.pushed == len(trades) + 8
    assert status.duplicates == 8 and status.accepted == len(trades) - 1
    assert status.quarantined == {"price not a positive number": 1}
    # Hyperliquid has one watch per coin: one re-made just before the drop may dial once more, and that connection
    # is closed with the others (left open, it would take trades from the stand-in's feed and fail the counts)
    assert status.reconnects == 1 and server.connections in ((2,) if venue == "deribit" else (2, 3))
    gaps = [g for ch in chunks for g in ch.gaps]
    closed = [g for g in gaps if g.end is not None]
    assert [g.reason for g in closed] == [GAP_STARTUP, GAP_DISCONNECT]
    drop = closed[1]
    assert drop.symbols == tuple(ids) and drop.start <= drop.end
    # the gap starts at the last trade before the drop
    sent = [server.sent[i] for i in sorted(server.sent)]
    assert drop.start == max(pl.Series([t.ts for t in sent[:50]]).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"))
    ticks = pl.concat([ch.ticks for ch in chunks if ch.ticks is not None and ch.ticks.height])
    assert ticks[c.EXCHANGE].unique().to_list() == [label]
    got = set(zip(ticks[c.SYMBOL], ticks[c.ID], ticks[c.SIDE], ticks[c.PRICE], ticks[c.AMOUNT],
                  ticks[c.TIMESTAMP].dt.epoch("ms")))
    want = {(t.symbol, t.id, t.side, float(t.price), float(t.amount), t.ts) for t in sent if t.price != "0"}
    assert got == want


@pytest.mark.timeout(60)
@pytest.mark.parametrize("venue", list(VENUES))
def test_a_burst_across_symbols_is_read_whole(venue):
    """Messages of several symbols arriving between two reads are all read, none waits for a later message."""
    factory, make, exchange, given, _, ids, label, kinds = VENUES[venue]
    trades = make(400)

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


@pytest.mark.slow
@pytest.mark.timeout(150)
@pytest.mark.parametrize("venue", list(VENUES))
def test_stream_cli_candles_equal_decimal_of_the_venue_trades(venue, tmp_path, monkeypatch):
    monkeypatch.setenv("MDSTREAM_INSTRUMENTS_FETCH", "off")  # contract sizes come from the ccxt source alone
    factory, make, exchange, given, _, ids, label, kinds = VENUES[venue]
    count = 4_000  # 20 s at 200 trades/s: at least one whole 15 s window per symbol
    trades = make(count)

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
    for symbol, (kind, size, _) in kinds.items():
        # the truth is what the venue sent (its decimal text), in the order it sent it
        mine = [t for t in sent if t.symbol == symbol]
        truth = pl.DataFrame({c.TIMESTAMP: [t.ts * 1000 for t in mine], c.SIDE: [t.side for t in mine],
                              c.PRICE: [float(t.price) for t in mine], c.AMOUNT: [float(t.amount) for t in mine]})
        expected = decimal_candles(truth.sort(c.TIMESTAMP, maintain_order=True), "15s", kind, size)
        emitted = candles.filter(pl.col(c.SYMBOL) == symbol)
        last_end = emitted[c.TIMESTAMP_IN].max() + timedelta(seconds=15)
        closed = {s: w for s, w in expected.items() if s + timedelta(seconds=15) <= last_end}
        assert len(closed) == len(expected) >= 2, (symbol, sorted(expected), last_end)
        checked += assert_matches_decimal(emitted, closed)
    assert checked >= 4
