"""Deribit outages healed exactly from its trade sequence numbers, against the local Deribit stand-in reached
through ccxt: `public/get_last_trades_by_instrument` paged by trade_seq gives back every trade an outage missed (a
hole in the history leaves the fill unproven, with the reason), and `mdstream stream --source ccxt --exchange
deribit` through an outage of a few seconds while the market goes on stores windows equal to a Decimal aggregation
of every trade, sent or missed, with no `gap = feed` left; with `--heal off` the hole stays feed."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from mdstream.contract import columns as c
from mdstream.sources.heal_ccxt import fill_deribit_gap, fill_deribit_since
from support import ccxt_heal_checks
from support.ccxt_venues_dr_hl import DeribitServer, deribit_trades

T0 = 1_760_000_000_000
SYMBOLS = ["BTC-PERPETUAL", "ETH-PERPETUAL"]


def fill(trades, last_seq: int, next_seq: int, hole: frozenset[int] = frozenset()):
    """(fill of BTC-PERPETUAL between two trade_seq, the stand-in) from a history holding `trades` but `hole`."""
    async def scenario():
        server = await DeribitServer(trades).start()
        server.sent = dict(enumerate(trades))
        server.hole = set(hole)
        try:
            got = await fill_deribit_gap("deribit", "BTC-PERPETUAL", last_seq, next_seq, now=datetime.now(UTC),
                                         base_url=server.url)
            return got, server
        finally:
            await server.stop()

    return asyncio.run(scenario())


@pytest.mark.timeout(60)
def test_a_gap_is_filled_exactly_across_pages_by_trade_seq():
    trades = [replace(t, ts=T0 + i) for i, t in enumerate(deribit_trades(5_000))]
    got, server = fill(trades, 100, 2_400)
    btc = [t for t in trades if t.symbol == "BTC-PERPETUAL"]  # trade_seq 1, 2, ... in order
    want = btc[100:2_399]
    assert got.complete and got.reason == "contiguous trade_seq" and got.ticks.height == 2_299
    assert got.requests == 3 and [int(q["count"]) for q in server.history_requests] == [1000] * 3
    assert {(q["include_old"], q["sorting"]) for q in server.history_requests} == {("true", "asc")}
    assert [int(q["start_seq"]) for q in server.history_requests] == [101, 1101, 2101]
    assert got.ticks[c.EXCHANGE].unique().to_list() == ["deribit"]
    assert got.ticks[c.SYMBOL].unique().to_list() == ["BTC-PERPETUAL"]
    assert got.ticks[c.ID].to_list() == [t.id for t in want]
    assert got.ticks[c.PRICE].to_list() == [float(t.price) for t in want]
    assert got.ticks[c.AMOUNT].to_list() == [float(t.amount) for t in want]
    assert got.ticks[c.SIDE].to_list() == [t.side for t in want]
    assert got.ticks[c.TIMESTAMP].dt.epoch("ms").to_list() == [t.ts for t in want]
    nothing, _ = fill(trades, 7, 8)
    assert nothing.complete and nothing.ticks.height == 0 and nothing.requests == 0


@pytest.mark.timeout(60)
def test_a_hole_in_the_history_leaves_the_fill_unproven():
    trades = [replace(t, ts=T0 + i) for i, t in enumerate(deribit_trades(600))]
    got, _ = fill(trades, 10, 200, hole=frozenset({50, 51}))
    assert not got.complete and got.reason == "2 of 189 trade_seq missing from the history"
    assert got.ticks.height == 187
    short, _ = fill(trades, 250, 400)  # the history ends at trade_seq 300
    assert not short.complete and short.reason == "99 of 149 trade_seq missing from the history"


def fill_since(trades, first: int, since_seq: int, hole: frozenset[int] = frozenset(), ids: tuple[str, ...] = ()):
    """(fill of BTC-PERPETUAL from the time of trade_seq `since_seq` up to the feed's first trade, trade_seq
    `first`, the stand-in) from a history holding `trades` but `hole`."""
    async def scenario():
        server = await DeribitServer(trades).start()
        server.sent = dict(enumerate(trades))
        server.hole = set(hole)
        btc = [t for t in trades if t.symbol == "BTC-PERPETUAL"]
        at = datetime.fromtimestamp(btc[first - 1].ts / 1000, UTC)
        since = datetime.fromtimestamp(btc[since_seq - 1].ts / 1000, UTC)
        try:
            got = await fill_deribit_since("deribit", "BTC-PERPETUAL", ids or (btc[first - 1].id,), at, since,
                                           now=datetime.now(UTC), base_url=server.url)
            return got, server
        finally:
            await server.stop()

    return asyncio.run(scenario())


@pytest.mark.timeout(60)
def test_the_start_is_filled_back_from_the_feeds_first_trade_to_the_window_start():
    """The feed's first trade is located by its time and id, then pages are read backwards by trade_seq until one
    holds a trade before the window start; from there on every trade is kept."""
    trades = [replace(t, ts=T0 + 2 * i) for i, t in enumerate(deribit_trades(5_000))]  # BTC every 4 ms
    got, server = fill_since(trades, 2_300, 1_000)
    btc = [t for t in trades if t.symbol == "BTC-PERPETUAL"]
    assert got.complete and got.reason == "contiguous trade_seq since the window start", got.reason
    assert got.ticks[c.ID].to_list() == [t.id for t in btc[999:2_299]]  # trade_seq 1000 .. 2299
    first, *pages = server.history_requests
    assert (int(first["start_timestamp"]), int(first["end_timestamp"])) == (btc[2_299].ts, btc[2_299].ts)
    assert [(int(q["start_seq"]), int(q["end_seq"])) for q in pages] == [(1_300, 2_299), (300, 1_299)]
    assert got.requests == 3
    # a window start before the market's first trade: complete once trade_seq 1 is reached
    early, _ = fill_since(trades, 600, 1)
    assert early.complete and early.ticks.height == 599


@pytest.mark.timeout(60)
def test_a_start_fill_with_a_hole_or_without_the_first_trade_is_unproven():
    trades = [replace(t, ts=T0 + 2 * i) for i, t in enumerate(deribit_trades(3_000))]
    holed, _ = fill_since(trades, 1_200, 500, hole=frozenset({700}))
    assert not holed.complete and holed.reason == "trade_seq missing from the history"
    unknown, server = fill_since(trades, 1_200, 500, ids=("999",))
    assert not unknown.complete and unknown.reason == "the feed's first trades are not in the history"
    assert unknown.ticks.height == 0 and len(server.history_requests) == 1


@pytest.mark.timeout(60)
def test_a_missed_run_of_trades_is_a_gap_naming_the_trade_seq_on_each_side():
    """The stand-in drops the feed after 100 trades and stamps 60 more while it is down: each instrument's jump
    in trade_seq is one gap with ids (last seen, next seen); nothing else counts as a repeat."""
    gaps, server = ccxt_heal_checks.missed_run(DeribitServer, deribit_trades(400), "deribit", SYMBOLS)
    jumps = sorted((g.symbols, g.ids) for g in gaps if g.ids is not None)
    # BTC and ETH alternate: trades 0..99 sent (seq 1..50 each), 100..159 skipped (seq 51..80 each)
    assert jumps == [(("BTC-PERPETUAL",), (50, 81)), (("ETH-PERPETUAL",), (50, 81))]


def run_outage(tmp_path, *extra: str, count: int = 12_000, cut: int = 5_400, skip: int = 1_200):
    """The stand-in at 300 trades/s drops the feed after `cut` trades (18 s: past the first window) and goes on
    trading `skip` more (4 s) while it is down, then the rest (18 s: the outage's windows lie before the last one)."""
    return ccxt_heal_checks.run_outage(tmp_path, DeribitServer, deribit_trades(count), "deribit", SYMBOLS, "deribit",
                                       *extra, cut=cut, skip=skip)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_an_outage_is_healed_from_trade_seq_and_equals_every_trade_in_decimal(tmp_path):
    job, server, metrics = run_outage(tmp_path)
    assert len(server.skipped) == 1_200, job.output()[-3000:]
    # amounts are USD: one unit is 1 USD
    ccxt_heal_checks.outage_is_healed(job, server, metrics, SYMBOLS, lambda t: server.seq[(t.symbol, t.id)],
                                      "inverse")


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_with_heal_off_the_deribit_outage_stays_feed(tmp_path):
    ccxt_heal_checks.outage_stays_feed(*run_outage(tmp_path, "--heal", "off"))


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_partial_window_at_start_is_healed_from_trade_seq(tmp_path):
    """The market trades for 3 s before the job connects: the 15 s window holding the start is filled from the
    history back to its start, from the feed's first trades, and equals every trade in Decimal, not `feed`."""
    job, server = ccxt_heal_checks.run_start(tmp_path, DeribitServer, deribit_trades(9_000), "deribit", SYMBOLS,
                                             "deribit")
    ccxt_heal_checks.start_is_healed(job, server, SYMBOLS, lambda t: server.seq[(t.symbol, t.id)], "inverse")
    assert any("start_timestamp" in q for q in server.history_requests)
