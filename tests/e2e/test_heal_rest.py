"""The REST half of healing against a local Binance trade-history stand-in on 127.0.0.1 (historicalTrades, paged by
fromId, with a 429 + Retry-After first): the missing trades come back exactly, the fill is proven complete only when
every id between the two seen is there."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from mdstream.contract import columns as c
from mdstream.contract.errors import SourceError
from mdstream.sources.heal import fill_binance_gap, fill_binance_since
from support.rest_history import HistoryServer

T0 = 1_764_000_000_000  # epoch ms


def history(n: int, *, first: int = 5_000) -> list[dict]:
    """Binance historicalTrades rows (documented fields) with consecutive ids from `first`."""
    return [{"id": first + i, "price": f"{60000 + i % 97 / 10:.2f}", "qty": f"{(i % 13 + 1) / 1000:.3f}",
             "quoteQty": "0", "time": T0 + i * 7, "isBuyerMaker": i % 3 == 0, "isBestMatch": True} for i in range(n)]


def run(server: HistoryServer, last_id: int, next_id: int, **kw):
    """fill_binance_gap against the stand-in; (fill, seconds taken, requests seen)."""
    async def scenario():
        await server.start()
        try:
            began = time.monotonic()
            fill = await fill_binance_gap("binance", "BTCUSDT", last_id, next_id, now=datetime.now(UTC),
                                          base_url=server.url, **kw)
            return fill, time.monotonic() - began
        finally:
            await server.stop()
    return asyncio.run(scenario())


def test_a_gap_is_filled_exactly_across_pages_after_a_rate_limit():
    rows = history(3_000)
    server = HistoryServer(rows, throttle=1, retry_after=0.3)
    # the feed saw id 5_100, then 7_600: 2_499 trades are missing, three pages
    fill, took = run(server, 5_100, 7_600)
    assert fill.complete and fill.reason == "contiguous ids"
    assert fill.ticks.height == 2_499 and fill.requests == 4 == len(server.requests)
    assert took >= 0.3  # the venue's Retry-After was honoured
    want = [r for r in rows if 5_100 < r["id"] < 7_600]
    got = fill.ticks
    assert got[c.ID].to_list() == [str(r["id"]) for r in want]
    assert got[c.PRICE].to_list() == [float(r["price"]) for r in want]
    assert got[c.AMOUNT].to_list() == [float(r["qty"]) for r in want]
    assert got[c.SIDE].to_list() == ["sell" if r["isBuyerMaker"] else "buy" for r in want]
    assert got[c.TIMESTAMP].dt.epoch("ms").to_list() == [r["time"] for r in want]
    assert set(got[c.EXCHANGE]) == {"binance"} and set(got[c.SYMBOL]) == {"BTCUSDT"}


def test_a_hole_in_the_history_leaves_the_fill_unproven():
    server = HistoryServer(history(500), hole={5_200, 5_201})
    fill, _ = run(server, 5_150, 5_300)
    assert not fill.complete and fill.reason == "2 of 149 trade ids missing from the history"
    assert fill.ticks.height == 147


def test_a_venue_that_keeps_refusing_is_a_clear_error():
    server = HistoryServer(history(10), throttle=100, retry_after=0.01)
    with pytest.raises(SourceError, match="refused after 3 attempts"):
        run(server, 5_000, 5_005, attempts=3)


def since(server: HistoryServer, next_id: int, since_ms: int):
    """fill_binance_since against the stand-in."""
    async def scenario():
        await server.start()
        try:
            return await fill_binance_since("binance-futures", "BTCUSDT", next_id,
                                            datetime.fromtimestamp(since_ms / 1000, UTC), now=datetime.now(UTC),
                                            base_url=server.url)
        finally:
            await server.stop()
    return asyncio.run(scenario())


def test_the_start_of_a_window_is_filled_back_from_the_first_trade_seen():
    """At start the first trade seen is id 7_800 (t = T0 + 2_800 * 7 ms); the window began at T0 + 10 s: the pages
    are read backwards until one holds a trade before it, and only the window's trades come back."""
    rows = history(4_000)
    fill = since(HistoryServer(rows, throttle=1, retry_after=0.05), 7_800, T0 + 10_000)
    want = [r for r in rows if r["time"] >= T0 + 10_000 and r["id"] < 7_800]
    assert fill.complete and fill.reason == "contiguous ids since the window start"
    assert fill.ticks[c.ID].to_list() == [str(r["id"]) for r in want] and len(want) == 1_371
    assert fill.ticks[c.TIMESTAMP].dt.epoch("ms").min() >= T0 + 10_000
    assert fill.requests == 3  # 6_800.., 5_800.. (holds the window start), plus the one refused


def test_a_start_the_history_cannot_reach_or_with_a_hole_stays_unproven():
    rows = history(1_000)
    short = since(HistoryServer(rows), 5_900, T0 - 1)  # the window began before the oldest trade held
    assert not short.complete and short.reason == "the history does not reach back to the window start"
    holed = since(HistoryServer(rows, hole={5_700}), 5_900, T0 + 3_000)
    assert not holed.complete and holed.reason == "trade ids missing from the history"


def test_okx_gap_filled_through_ccxt_history_by_trade_id():
    """OKX's history-trades through ccxt, paged back by trade id from the first id after the gap."""
    from mdstream.sources.heal_ccxt import fill_okx_gap
    from support.ccxt_venues import OkxServer, make_trades, okx_swap

    trades = [replace(t, ts=T0 + i) for i, t in enumerate(make_trades(["BTC-USDT-SWAP"], 400))]
    ids = [int(t.id) for t in trades]

    async def scenario(hole: set[int]):
        server = await OkxServer([], [okx_swap("BTC-USDT-SWAP", "0.01")]).start()
        server.history = [t for t in trades if int(t.id) not in hole]
        try:
            return await fill_okx_gap("okex-swap", "BTC-USDT-SWAP", ids[50], ids[300], now=datetime.now(UTC),
                                      base_url=server.url)
        finally:
            await server.stop()

    fill = asyncio.run(scenario(set()))
    assert fill.complete and fill.ticks.height == 249 and fill.requests >= 3
    want = trades[51:300]
    assert fill.ticks[c.ID].to_list() == [t.id for t in want]
    assert fill.ticks[c.PRICE].to_list() == [float(t.price) for t in want]
    assert fill.ticks[c.AMOUNT].to_list() == [float(t.amount) for t in want]
    assert fill.ticks[c.SIDE].to_list() == [t.side for t in want]
    assert fill.ticks[c.TIMESTAMP].dt.epoch("ms").to_list() == [t.ts for t in want]
    holed = asyncio.run(scenario({ids[120]}))
    assert not holed.complete and holed.reason == "1 of 249 trade ids missing from the history"
