"""The ccxt source against local Coinbase (Advanced Trade) and Kraken (spot, WebSocket v2) stand-ins, reached
through ccxt itself: the REST calls of ccxt's load_markets, symbols in each venue's forms and the one ticks carry,
labels, instruments, accounting, repeats as duplicates, a dropped connection as a counted gap, a bad trade
quarantined, a burst read whole; and `mdstream stream --source ccxt` whose candles equal a Decimal aggregation of
the trades the venue sent."""

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
from support.ccxt_venues_cb_kr import (
    CoinbaseServer,
    KrakenServer,
    Trade,
    coinbase_product,
    kraken_pair,
    make_trades,
)
from support.contracts import assert_matches_decimal, decimal_candles
from support.stream_cli import CliStream
from support.stream_helpers import read_db

COINBASE_PRODUCTS = [coinbase_product("BTC-USD", "60000.00", "Bitcoin"),
                     coinbase_product("ETH-USD", "3000.00", "Ethereum")]
KRAKEN_PAIRS = dict([kraken_pair("XBT/USD", "XXBT", "ZUSD", 1, "0.00005"),
                     kraken_pair("ETH/USD", "XETH", "ZUSD", 2, "0.002")])
KRAKEN_V2 = {"XBT/USD": "BTC/USD", "ETH/USD": "ETH/USD"}  # the pair's wsname -> the v2 WebSocket's symbol


def coinbase(trades: list[Trade], **kw) -> CoinbaseServer:
    """A Coinbase stand-in with BTC-USD and ETH-USD."""
    return CoinbaseServer(trades, COINBASE_PRODUCTS, **kw)


def kraken(trades: list[Trade], **kw) -> KrakenServer:
    """A Kraken stand-in with XBT/USD and ETH/USD."""
    return KrakenServer(trades, KRAKEN_PAIRS, KRAKEN_V2, **kw)


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
    factory, exchange, given, ids, label = VENUES[venue]
    trades = trades_of(ids, 90)
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
    assert status.reconnects == 1 and server.connections == 2
    closed = [g for ch in chunks for g in ch.gaps if g.end is not None]
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
    """Messages of both symbols arriving between two reads are all read, none waits for a later message."""
    factory, exchange, given, ids, label = VENUES[venue]
    trades = trades_of(ids, 400)

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
    monkeypatch.setenv("MDSTREAM_INSTRUMENTS_FETCH", "off")  # instruments come from ccxt's markets alone
    factory, exchange, given, ids, label = VENUES[venue]
    count = 4_000  # 20 s at 200 trades/s: at least one whole 15 s window per symbol
    trades = trades_of(ids, count)

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
    assert sorted(ticks[c.SYMBOL].unique().to_list()) == sorted(ids)
    candles = read_db(job.db, "SELECT * FROM candles_latest WHERE timeframe = '15s' AND trades > 0")
    sent = [server.sent[i] for i in sorted(server.sent)]
    checked = 0
    for symbol in ids:
        # the truth is what the venue sent (its decimal text), in the order it sent it
        mine = [t for t in sent if t.symbol == symbol]
        truth = pl.DataFrame({c.TIMESTAMP: [t.ts * 1000 for t in mine], c.SIDE: [t.side for t in mine],
                              c.PRICE: [float(t.price) for t in mine], c.AMOUNT: [float(t.amount) for t in mine]})
        expected = decimal_candles(truth.sort(c.TIMESTAMP, maintain_order=True), "15s", "linear", 1.0)
        emitted = candles.filter(pl.col(c.SYMBOL) == symbol)
        last_end = emitted[c.TIMESTAMP_IN].max() + timedelta(seconds=15)
        closed = {s: w for s, w in expected.items() if s + timedelta(seconds=15) <= last_end}
        assert len(closed) == len(expected) >= 2, (symbol, sorted(expected), last_end)
        checked += assert_matches_decimal(emitted, closed)
    assert checked >= 4
