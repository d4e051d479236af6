"""The ccxt source against local Deribit and Hyperliquid stand-ins (their documented REST markets and WebSocket
trade protocols on 127.0.0.1, reached through ccxt itself): symbols in the venue's form and ccxt's, labels,
instruments as the venue's trades count them, accounting, repeats as duplicates, a dropped connection as a counted
gap, bad trades quarantined; and `mdstream stream --source ccxt` whose candles equal a Decimal aggregation of the
trades the venue sent."""

from __future__ import annotations

import asyncio

import pytest

from mdstream.contract.errors import ConfigError
from mdstream.sources.ccxt_source import CcxtSource
from support.ccxt_checks import burst_is_read_whole, drop_is_counted, stream_matches_decimal
from support.ccxt_venues import Trade, VenueServer
from support.ccxt_venues_dr_hl import DeribitServer, HyperliquidServer, deribit_trades, hyperliquid_trades


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
    # Hyperliquid has one watch per coin: one re-made just before the drop may dial once more, and that connection
    # is closed with the others (left open, it would take trades from the stand-in's feed and fail the counts)
    # Deribit numbers each instrument's trades (trade_seq): trade 40 (BTC's 21st) is quarantined, a jump 20 -> 22
    jumps = (("BTC-PERPETUAL", (20, 22)),) if venue == "deribit" else ()
    drop_is_counted(factory, make(90), exchange, given, ids, label, (2,) if venue == "deribit" else (2, 3), jumps)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("venue", list(VENUES))
def test_a_burst_across_symbols_is_read_whole(venue):
    factory, make, exchange, given, _, ids, label, kinds = VENUES[venue]
    burst_is_read_whole(factory, make(400), exchange, given)


@pytest.mark.slow
@pytest.mark.timeout(150)
@pytest.mark.parametrize("venue", list(VENUES))
def test_stream_cli_candles_equal_decimal_of_the_venue_trades(venue, tmp_path, monkeypatch):
    monkeypatch.setenv("MDSTREAM_INSTRUMENTS_FETCH", "off")  # contract sizes come from the ccxt source alone
    factory, make, exchange, given, _, ids, label, kinds = VENUES[venue]
    trades = make(4_000)  # 20 s at 200 trades/s: a whole 15 s window per symbol
    sizes = {symbol: (kind, size) for symbol, (kind, size, _) in kinds.items()}
    stream_matches_decimal(tmp_path, factory, trades, exchange, given, label, sizes)
