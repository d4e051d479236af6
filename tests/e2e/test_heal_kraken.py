"""Kraken outages healed exactly from its trade_id, against the local Kraken stand-in reached through ccxt:
`/0/public/Trades` paged forward by time from the last trade seen gives back every trade an outage missed, with the
timestamps the WebSocket gives (a hole in the history leaves the fill unproven, with the reason), and
`mdstream stream --source ccxt --exchange kraken` through an outage of a few seconds while the market goes on
stores windows equal to a Decimal aggregation of every trade, sent or missed, with no `gap = feed` left; with
`--heal off` the hole stays feed."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from mdstream.contract import columns as c
from mdstream.sources.heal_kraken import fill_kraken_gap, fill_kraken_since, kraken_ms
from support import ccxt_heal_checks
from support.ccxt_venues_cb_kr import KrakenServer, Trade, kraken_trades

T0_US = 1_760_000_000_000_000
SYMBOLS = ["XBT/USD", "ETH/USD"]
FIRST = 1_000_001  # each pair's first trade_id in kraken_trades


def timed(trades: list[Trade]) -> tuple[list[Trade], dict[tuple[str, str], int]]:
    """(the trades stamped 1001 µs apart, so their sub-millisecond digits take every value; their times in µs)."""
    micros = {(t.symbol, t.id): T0_US + 1001 * i for i, t in enumerate(trades)}
    return [replace(t, ts=micros[(t.symbol, t.id)] // 1000) for t in trades], micros


def fill(trades: list[Trade], last_id: int, next_id: int, hole: frozenset[int] = frozenset()):
    """(fill of XBT/USD between two trade_ids, from the time of trade last_id; the stand-in) from a history holding
    `trades` but `hole`."""
    stamped, micros = timed(trades)
    by_id = {int(t.id): t for t in stamped if t.symbol == "XBT/USD"}

    async def scenario():
        server = await KrakenServer(stamped).start()
        server.sent, server.micros, server.hole = dict(enumerate(stamped)), micros, set(hole)
        try:
            since = by_id[last_id].ts if last_id in by_id else 0
            got = await fill_kraken_gap("kraken", "XBT/USD", last_id, next_id, now=datetime.now(UTC), since_ms=since,
                                        base_url=server.url)
            return got, server
        finally:
            await server.stop()

    got, server = asyncio.run(scenario())
    return got, server, stamped, micros


def test_rest_times_read_as_the_websocket_reads_them():
    # read to the µs (what a double of today's epoch seconds holds), then cut to the ms as ccxt cuts the RFC 3339 text
    assert kraken_ms(1760000000.001) == 1_760_000_000_001
    assert kraken_ms(1688669597.8277369) == 1_688_669_597_827
    assert kraken_ms("1760000000.999999") == 1_760_000_000_999
    assert all(kraken_ms(us / 1e6) == us // 1000 for us in range(T0_US, T0_US + 200_000, 1001))
    assert kraken_ms(None) is None and kraken_ms("soon") is None


@pytest.mark.timeout(60)
def test_a_gap_is_filled_exactly_across_pages_by_trade_id():
    got, server, trades, micros = fill(kraken_trades(5_000), FIRST + 99, FIRST + 2_399)
    xbt = [t for t in trades if t.symbol == "XBT/USD"]  # trade_id FIRST, FIRST + 1, ... in order
    want = xbt[100:2_399]
    assert got.complete and got.reason == "contiguous trade_id" and got.ticks.height == 2_299
    # forward from one ns before the last trade seen (its ms), each next page from the one before's `last`
    ns = [micros[("XBT/USD", xbt[i].id)] * 1000 for i in (1_098, 2_098)]
    assert got.requests == 3 and [int(q["since"]) for q in server.history_requests] == \
        [xbt[99].ts * 1_000_000 - 1, *ns]
    assert [q["pair"] for q in server.history_requests] == ["XXBTZUSD"] * 3
    assert {int(q["count"]) for q in server.history_requests} == {1000}
    assert got.ticks[c.EXCHANGE].unique().to_list() == ["kraken"]
    assert got.ticks[c.SYMBOL].unique().to_list() == ["XBT/USD"]
    assert got.ticks[c.ID].to_list() == [t.id for t in want]
    assert got.ticks[c.PRICE].to_list() == [float(t.price) for t in want]
    assert got.ticks[c.AMOUNT].to_list() == [float(t.amount) for t in want]
    assert got.ticks[c.SIDE].to_list() == [t.side for t in want]
    # the timestamps the WebSocket path gives the same trades: their µs time cut to the ms
    assert got.ticks[c.TIMESTAMP].dt.epoch("ms").to_list() == [t.ts for t in want]


@pytest.mark.timeout(60)
def test_a_hole_in_the_history_leaves_the_fill_unproven():
    trades = kraken_trades(600)  # trade_ids FIRST .. FIRST + 299 per pair
    got, server, _, _ = fill(trades, FIRST + 9, FIRST + 199, hole=frozenset({FIRST + 49, FIRST + 50}))
    assert not got.complete and got.reason == "2 of 189 trade_id missing from the history"
    assert got.ticks.height == 187 and got.requests == 1
    short, server, _, _ = fill(trades, FIRST + 249, FIRST + 399)  # the history ends at FIRST + 299
    assert not short.complete and short.reason == "99 of 149 trade_id missing from the history"
    assert short.requests == 2 and short.ticks.height == 50  # the second page is empty: nothing after it


@pytest.mark.timeout(60)
def test_nothing_missing_asks_nothing():
    nothing, server, _, _ = fill(kraken_trades(20), FIRST + 3, FIRST + 4)
    assert nothing.complete and nothing.ticks.height == 0 and nothing.requests == 0
    assert server.history_requests == []


def fill_since(trades: list[Trade], first: int, since_id: int, hole: frozenset[int] = frozenset(),
               ids: tuple[str, ...] | None = None):
    """(fill of XBT/USD from the time of trade_id `since_id` up to the feed's first trade, trade_id `first`; the
    stand-in) from a history holding `trades` but `hole`."""
    stamped, micros = timed(trades)
    by_id = {int(t.id): t for t in stamped if t.symbol == "XBT/USD"}

    async def scenario():
        server = await KrakenServer(stamped).start()
        server.sent, server.micros, server.hole = dict(enumerate(stamped)), micros, set(hole)
        at, since = (datetime.fromtimestamp(by_id[i].ts / 1000, UTC) for i in (first, since_id))
        try:
            got = await fill_kraken_since("kraken", "XBT/USD", ids or (str(first),), at, since,
                                          now=datetime.now(UTC), base_url=server.url)
            return got, server
        finally:
            await server.stop()

    got, server = asyncio.run(scenario())
    return got, server, stamped


@pytest.mark.timeout(60)
def test_the_start_is_filled_from_before_the_window_start_up_to_the_feeds_first_trade():
    """Read forward from a minute before the window start: a trade before it proves the fill reaches the start;
    the trades from the window start up to the first one the feed gave are kept."""
    got, server, trades = fill_since(kraken_trades(5_000), FIRST + 2_300, FIRST + 1_000)
    xbt = [t for t in trades if t.symbol == "XBT/USD"]
    assert got.complete and got.reason == "contiguous trade_id since the window start", got.reason
    assert got.ticks[c.ID].to_list() == [t.id for t in xbt[1_000:2_300]]
    assert got.ticks[c.TIMESTAMP].dt.epoch("ms").to_list() == [t.ts for t in xbt[1_000:2_300]]
    assert got.requests == 3 and int(server.history_requests[0]["since"]) == (xbt[1_000].ts - 60_000) * 10**6 - 1


@pytest.mark.timeout(60)
def test_a_start_fill_without_a_trade_before_the_window_a_hole_or_a_trade_id_is_unproven():
    trades = kraken_trades(1_000)
    first, server, _ = fill_since(trades, FIRST + 300, FIRST)  # nothing traded before the window, however far back
    assert not first.complete and first.reason == "the history does not reach back to the window start"
    assert len({int(q["since"]) for q in server.history_requests}) == 3  # a minute, an hour, a day before
    holed, _, _ = fill_since(trades, FIRST + 300, FIRST + 100, hole=frozenset({FIRST + 200}))
    assert not holed.complete and holed.reason == "trade_id missing from the history"
    named, server, _ = fill_since(trades, FIRST + 300, FIRST + 100, ids=("T5DIUI",))
    assert not named.complete and named.reason == "no trade_id among the feed's first trades"
    assert server.history_requests == []


@pytest.mark.timeout(60)
def test_a_missed_run_of_trades_is_a_gap_naming_the_trade_ids_and_time_on_each_side():
    """The stand-in drops the feed after 100 trades and stamps 60 more while it is down: each pair's jump in
    trade_id is one gap with ids (last seen, next seen), starting at the last seen trade's time (what a fill reads
    the history from); nothing else counts as a repeat."""
    gaps, server = ccxt_heal_checks.missed_run(KrakenServer, kraken_trades(400), "kraken", SYMBOLS)
    jumps = sorted((g.symbols, g.ids, g.start) for g in gaps if g.ids is not None)
    # XBT and ETH alternate: trades 0..99 sent (50 each), 100..159 skipped (30 each)
    last_seen = {t.symbol: t for i, t in server.sent.items() if i < 100}
    assert jumps == [((s,), (FIRST + 49, FIRST + 80), datetime.fromtimestamp(last_seen[s].ts / 1000, UTC))
                     for s in sorted(SYMBOLS)]


def run_outage(tmp_path, *extra: str, count: int = 12_000, cut: int = 5_400, skip: int = 1_200):
    """The stand-in at 300 trades/s drops the feed after `cut` trades (18 s: past the first window) and goes on
    trading `skip` more (4 s) while it is down, then the rest (18 s: the outage's windows lie before the last one)."""
    return ccxt_heal_checks.run_outage(tmp_path, KrakenServer, kraken_trades(count), "kraken", SYMBOLS, "kraken",
                                       *extra, cut=cut, skip=skip)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_an_outage_is_healed_from_trade_id_and_equals_every_trade_in_decimal(tmp_path):
    job, server, metrics = run_outage(tmp_path)
    assert len(server.skipped) == 1_200, job.output()[-3000:]
    # spot: amounts in the base coin
    ccxt_heal_checks.outage_is_healed(job, server, metrics, SYMBOLS, lambda t: int(t.id), "linear")


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_with_heal_off_the_kraken_outage_stays_feed(tmp_path):
    ccxt_heal_checks.outage_stays_feed(*run_outage(tmp_path, "--heal", "off"))


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_partial_window_at_start_is_healed_from_trade_id(tmp_path):
    """The market trades for 3 s before the job connects: the 15 s window holding the start is filled from the
    history (read from a minute before it) up to the feed's first trade_id, and equals every trade in Decimal."""
    job, server = ccxt_heal_checks.run_start(tmp_path, KrakenServer, kraken_trades(9_000), "kraken", SYMBOLS, "kraken")
    ccxt_heal_checks.start_is_healed(job, server, SYMBOLS, lambda t: int(t.id), "linear")
