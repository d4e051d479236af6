"""The ccxt source against local Coinbase (Advanced Trade) and Kraken (spot, WebSocket v2) stand-ins, reached
through ccxt itself: the REST calls of ccxt's load_markets, symbols in each venue's forms and the one ticks carry,
labels, instruments, accounting, repeats as duplicates, a dropped connection as a counted gap, a bad trade
quarantined, a burst read whole; and `mdstream stream --source ccxt` whose candles equal a Decimal aggregation of
the trades the venue sent."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from mdstream.contract.errors import ConfigError
from mdstream.sources.ccxt_source import CcxtSource
from support.ccxt_checks import burst_is_read_whole, drop_is_counted, stream_matches_decimal
from support.ccxt_venues_cb_kr import CoinbaseServer, KrakenServer, Trade, coinbase_product, make_trades

COINBASE_PRODUCTS = [coinbase_product("BTC-USD", "60000.00", "Bitcoin"),
                     coinbase_product("ETH-USD", "3000.00", "Ethereum")]


def coinbase(trades: list[Trade], **kw) -> CoinbaseServer:
    """A Coinbase stand-in with BTC-USD and ETH-USD."""
    return CoinbaseServer(trades, COINBASE_PRODUCTS, **kw)


def kraken(trades: list[Trade], **kw) -> KrakenServer:
    """A Kraken stand-in with XBT/USD and ETH/USD."""
    return KrakenServer(trades, **kw)


VENUES = {
    # venue: (server factory, --exchange, symbols as given, symbols ticks carry, label)
    "coinbase": (coinbase, "coinbase", ["BTC-USD", "ETH/USD"], ["BTC-USD", "ETH-USD"], "coinbase"),
    "kraken": (kraken, "kraken", ["XBT/USD", "ETH/USD"], ["XBT/USD", "ETH/USD"], "kraken"),
}


def trades_of(ids: list[str], n: int) -> list[Trade]:
    """`n` trades over `ids`, BTC prices for the bitcoin pair whatever the venue calls it (XBT)."""
    named = [i.replace("XBT", "BTC") for i in ids]
    back = dict(zip(named, ids))
    return [replace(t, symbol=back[t.symbol]) for t in make_trades(named, n)]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("venue", list(VENUES))
def test_drop_and_repeats_give_a_counted_gap_and_duplicates(venue):
    factory, exchange, given, ids, label = VENUES[venue]
    # Kraken numbers each pair's trades (trade_id): trade 40 (XBT/USD's 21st, id 1000021) is quarantined, a jump
    # 1000020 -> 1000022; Coinbase's ids are not taken as consecutive
    jumps = (("XBT/USD", (1_000_020, 1_000_022)),) if venue == "kraken" else ()
    drop_is_counted(factory, trades_of(ids, 90), exchange, given, ids, label, jumps=jumps)


@pytest.mark.parametrize("venue, forms, symbol", [
    ("coinbase", ["BTC-USD", "btc-usd", "BTC/USD"], "BTC-USD"),
    # Kraken's REST pair id, its altname, its wsname and ccxt's unified form: ticks carry the wsname
    ("kraken", ["XXBTZUSD", "XBTUSD", "XBT/USD", "BTC/USD"], "XBT/USD"),
])
def test_symbols_in_each_form_name_one_market(venue, forms, symbol):
    factory, exchange, _, _, label = VENUES[venue]

    async def scenario():
        server = await factory([]).start()
        try:
            sources = [await asyncio.to_thread(CcxtSource, exchange, [f], url=server.url) for f in forms]
            with pytest.raises(ConfigError, match="unknown symbol 'DOGE-EUR'"):
                await asyncio.to_thread(CcxtSource, exchange, ["DOGE-EUR"], url=server.url)
            return sources, server
        finally:
            await server.stop()

    sources, server = asyncio.run(scenario())
    assert server.unknown == []  # every REST call of ccxt's load_markets was one the stand-in answers
    for source in sources:
        inst = source.instruments[0]
        assert (source.exchange, source.symbols, source.unified) == (label, (symbol,), ("BTC/USD",))
        assert (inst.exchange, inst.symbol, inst.kind, inst.contract_size, inst.base_asset, inst.quote_asset) == \
            (label, symbol, "spot", 1.0, "BTC", "USD")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("venue", list(VENUES))
def test_a_burst_across_symbols_is_read_whole(venue):
    factory, exchange, given, ids, label = VENUES[venue]
    burst_is_read_whole(factory, trades_of(ids, 400), exchange, given)


@pytest.mark.slow
@pytest.mark.timeout(150)
@pytest.mark.parametrize("venue", list(VENUES))
def test_stream_cli_candles_equal_decimal_of_the_venue_trades(venue, tmp_path, monkeypatch):
    monkeypatch.setenv("MDSTREAM_INSTRUMENTS_FETCH", "off")  # instruments come from ccxt's markets alone
    factory, exchange, given, ids, label = VENUES[venue]
    trades = trades_of(ids, 4_000)  # 20 s at 200 trades/s: a whole 15 s window per symbol
    stream_matches_decimal(tmp_path, factory, trades, exchange, given, label, {s: ("linear", 1.0) for s in ids})
