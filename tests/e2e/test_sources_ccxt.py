"""The ccxt source against local OKX and Bybit stand-ins (their documented REST markets and WebSocket trade
protocols on 127.0.0.1, reached through ccxt itself): symbols in either form, labels, instruments, accounting,
repeats as duplicates, a dropped connection as a counted gap, bad trades quarantined; and `mdstream stream --source
ccxt` whose candles equal a Decimal aggregation of the trades the venue sent."""

from __future__ import annotations

import asyncio

import pytest

from mdstream.contract.errors import ConfigError
from mdstream.contract.feed import GAP_SILENT, GAP_STARTUP
from mdstream.sources.ccxt_source import CcxtSource
from support.ccxt_checks import burst_is_read_whole, collect, drop_is_counted, stream_matches_decimal
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


@pytest.mark.timeout(60)
@pytest.mark.parametrize("venue", list(VENUES))
def test_drop_and_repeats_give_a_counted_gap_and_duplicates(venue):
    factory, exchange, given, ids, label, uuids = VENUES[venue]
    drop_is_counted(factory, make_trades(ids, 90, uuid_ids=uuids), exchange, given, ids, label)


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
    trades = make_trades(ids, 4_000, uuid_ids=uuids)  # 20 s at 200 trades/s: a whole 15 s window per symbol
    sizes = {symbol: ("linear", size) for symbol, size in CONTRACT[venue].items()}
    stream_matches_decimal(tmp_path, factory, trades, exchange, given, label, sizes)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("venue", list(VENUES))
def test_a_burst_across_symbols_is_read_whole(venue):
    factory, exchange, given, ids, label, uuids = VENUES[venue]
    burst_is_read_whole(factory, make_trades(ids, 400, uuid_ids=uuids), exchange, given)


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
