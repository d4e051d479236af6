"""The healer's rules without a network: which window a start is healed from, what a complete or late fill heals,
and how each fill is counted (fetches are plain coroutines returning fills)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from mdstream.contract import columns as c
from mdstream.contract.feed import GAP_DISCONNECT, GAP_STARTUP, FeedGap
from mdstream.contract.schema import TICK_SCHEMA, conform
from mdstream.jobs.heal import PAST_HORIZON, Healer, start_window

T = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@dataclass
class Fill:
    """A fetched fill."""

    ticks: pl.DataFrame
    complete: bool
    reason: str


def ticks(symbol: str, first_id: int, times: list[datetime]) -> pl.DataFrame:
    """Ticks of one symbol with consecutive ids."""
    n = len(times)
    return conform(pl.DataFrame({c.EXCHANGE: ["binance"] * n, c.SYMBOL: [symbol] * n, c.TIMESTAMP: times,
                                 c.LOCAL_TIMESTAMP: times, c.ID: [str(first_id + i) for i in range(n)],
                                 c.SIDE: ["buy"] * n, c.PRICE: [1.0] * n, c.AMOUNT: [1.0] * n}), TICK_SCHEMA)


def test_the_start_window_is_the_longest_that_began_within_half_the_horizon():
    at = T + timedelta(minutes=3, seconds=40)  # 12:03:40
    assert start_window(at, ["15s", "1m", "5m", "1d"], 120) == T + timedelta(minutes=3)  # 1m began 40 s before
    assert start_window(at, ["15s", "1m"], 60) == T + timedelta(minutes=3, seconds=30)  # 1m began too long ago
    assert start_window(T + timedelta(seconds=50), ["15s", "1m", "5m"], 120) == T  # 5m began 50 s before


def run(healer: Healer, feed: list[tuple[list[FeedGap], pl.DataFrame | None]], revisable_from=None):
    """Watch each (gaps, ticks) then wait for the fills; what collect() hands back."""
    async def scenario():
        for gaps, frame in feed:
            healer.watch(gaps, frame)
        while healer._running or healer._queue:
            await asyncio.sleep(0.01)
        return healer.collect(revisable_from)
    return asyncio.run(scenario())


def test_a_complete_start_fill_heals_the_start_and_keeps_what_came_before_the_window():
    start_from = T - timedelta(seconds=15)
    asked = []

    async def since(exchange, symbol, ids, at, frm):
        asked.append((exchange, symbol, ids, at, frm))
        return Fill(ticks(symbol, 90, [start_from + timedelta(seconds=i) for i in range(10)]), True, "")

    healer = Healer(lambda *a: None, since=since)  # type: ignore[arg-type, return-value]
    job_start = FeedGap("binance", ("BTCUSDT",), T - timedelta(seconds=121), T, GAP_STARTUP)
    healer.starting([job_start], start_from)
    connected = FeedGap("binance", ("BTCUSDT", "ETHUSDT"), T, T + timedelta(seconds=1), GAP_STARTUP)
    done = run(healer, [([connected], ticks("BTCUSDT", 100, [T + timedelta(seconds=1)]))])
    assert asked == [("binance", "BTCUSDT", ("100",), T + timedelta(seconds=1), start_from)]
    (fill,) = done
    assert fill.heal == [job_start, FeedGap("binance", ("BTCUSDT",), T, T + timedelta(seconds=1), GAP_STARTUP)]
    assert fill.keep == [FeedGap("binance", ("BTCUSDT",), job_start.start, start_from - timedelta(microseconds=1),
                                 GAP_STARTUP)]
    assert healer.stats.as_dict() == {"complete": 1, "partial": 0, "failed": 0, "trades": 10, "windows": 0}
    # the symbol is filled once: later trades start nothing
    assert run(healer, [([], ticks("BTCUSDT", 101, [T + timedelta(seconds=2)]))]) == [] and len(asked) == 1


def test_a_fill_older_than_the_revision_floor_heals_nothing_and_counts_partial():
    async def fetch(exchange, symbol, last_id, next_id):
        return Fill(ticks(symbol, last_id + 1, [T, T + timedelta(seconds=1)]), True, "")

    healer = Healer(fetch)
    jump = FeedGap("binance", ("BTCUSDT",), T, T + timedelta(seconds=2), "id jump", ids=(10, 13))
    (late,) = run(healer, [([jump], None)], revisable_from=T + timedelta(milliseconds=500))
    assert late.heal == [] and late.ticks.height == 2  # its trades still go in (the engine quarantines the old one)
    assert healer.stats.partial == 1 and healer.stats.reasons == {PAST_HORIZON: 1}
    (fine,) = run(healer, [([jump], None)], revisable_from=T)
    assert fine.heal == [jump] and healer.stats.complete == 1


def test_a_failed_fetch_is_counted_and_the_outage_it_spans_stays():
    async def fetch(exchange, symbol, last_id, next_id):
        raise OSError("connection refused")

    healer = Healer(fetch)
    outage = FeedGap("binance", (), T, T + timedelta(seconds=15), GAP_DISCONNECT)
    jump = FeedGap("binance", ("BTCUSDT",), T, T + timedelta(seconds=15), "id jump", ids=(10, 900))
    assert run(healer, [([outage, jump], None)]) == []
    assert healer.stats.failed == 1 and healer.stats.reasons == {"OSError: connection refused": 1}


def test_a_start_fill_is_asked_up_to_the_feeds_earliest_trades_whatever_their_order():
    """The first batch may hold a symbol's trades out of order and several at its earliest instant: the fill is
    asked for all of those (the venue's numbers for them may be found only in its history)."""
    asked = []

    async def since(exchange, symbol, ids, at, frm):
        asked.append((symbol, ids, at))
        return Fill(ticks(symbol, 1, []), True, "")

    healer = Healer(lambda *a: None, since=since)  # type: ignore[arg-type, return-value]
    healer.starting([FeedGap("deribit", ("ETH-PERPETUAL",), T - timedelta(seconds=60), T, GAP_STARTUP)], T)
    batch = ticks("ETH-PERPETUAL", 5, [T + timedelta(seconds=2), T + timedelta(seconds=1), T + timedelta(seconds=1)])
    batch = batch.with_columns(pl.Series(c.ID, ["ETH-5", "ETH-7", "ETH-6"]))
    other = ticks("BTC-PERPETUAL", 9, [T])  # not listed at the start: starts nothing
    run(healer, [([], pl.concat([batch, other]))])
    assert asked == [("ETH-PERPETUAL", ("ETH-6", "ETH-7"), T + timedelta(seconds=1))]


def test_a_fetch_from_is_given_the_time_of_the_last_trade_before_the_jump():
    """A history paged by time (Kraken) is read from the jump's start; a complete fill heals the jump and the
    outage of that symbol it spans."""
    asked = []

    async def fetch_from(exchange, symbol, last_id, next_id, start):
        asked.append((exchange, symbol, last_id, next_id, start))
        return Fill(ticks(symbol, last_id + 1, [start + timedelta(seconds=1)]), True, "")

    healer = Healer(fetch_from=fetch_from)
    outage = FeedGap("kraken", ("XBT/USD", "ETH/USD"), T, T + timedelta(seconds=4), GAP_DISCONNECT)
    jump = FeedGap("kraken", ("XBT/USD",), T, T + timedelta(seconds=5), "id jump", ids=(10, 12))
    (fill,) = run(healer, [([outage, jump], None)])
    assert asked == [("kraken", "XBT/USD", 10, 12, T)]
    assert fill.heal == [jump, FeedGap("kraken", ("XBT/USD",), T, T + timedelta(seconds=4), GAP_DISCONNECT)]
    for both in ({}, {"fetch": fetch_from, "fetch_from": fetch_from}):
        with pytest.raises(ValueError, match="exactly one of fetch and fetch_from"):
            Healer(**both)  # type: ignore[arg-type]
