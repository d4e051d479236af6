"""The stream engine tells the truth under any feed: bounded clocks, outages as feed, every trade accounted for."""

from __future__ import annotations

import tracemalloc
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from mdstream.contract import columns as c
from mdstream.contract.feed import GAP_DISCONNECT, GAP_SILENT, GAP_STARTUP, FeedGap
from mdstream.engine.incremental import CandleEngine
from support.engine_frames import assert_same, latest, reference, t, ticks_of

LIVE = dict(timeframes=["15s", "1m"], lateness=timedelta(seconds=1))


def rows_of(out, tf="15s"):
    """(timestamp_in, gap, revision) of the rows of `tf`, in time order."""
    return out.candles.filter(pl.col(c.TIMEFRAME) == tf).sort(c.TIMESTAMP_IN).select(c.TIMESTAMP_IN, c.GAP, c.REVISION).rows()


def test_quiet_market_closes_on_the_wall_clock_within_a_bound_past_the_last_trade():
    engine = CandleEngine(**LIVE, max_quiet=timedelta(seconds=30))
    assert engine.step(ticks_of([(t(1), 1, 100.0)]), now=t(1)).candles.height == 0
    # No trade after the window, yet it closes once the wall clock passes its end + lateness.
    closed = engine.step(ticks_of([]), now=t(16.5))
    row = closed.candles.row(0, named=True)
    assert (row[c.TIMEFRAME], row[c.TIMESTAMP_IN], row[c.CLOSE], row[c.REVISION]) == ("15s", t(0), 100.0, 0)
    # ... but only up to max_quiet past the last trade: an hour of wall clock builds no hour of quiet windows.
    later = engine.step(ticks_of([]), now=t(3600))
    assert [r[0] for r in rows_of(later)] == [t(15)]  # [15, 30) ends within 1 + 30 - 1 s; [30, 45) does not
    assert engine.next_close() is None, "only a trade (or a known outage) can close the next window"


def test_a_late_trade_revises_its_window_and_every_later_one_whose_features_it_changes():
    engine = CandleEngine(**LIVE)
    engine.step(ticks_of([(t(1), 1, 100.0), (t(20), 2, 101.0), (t(31), 3, 101.0)]), now=t(31))
    late = engine.step(ticks_of([(t(5), 4, 105.0)]), now=t(32))
    rows = late.candles.filter(pl.col(c.TIMEFRAME) == "15s").sort(c.TIMESTAMP_IN)
    first = rows.row(0, named=True)
    assert (first[c.TIMESTAMP_IN], first[c.REVISION], first[c.LATE_TRADES], first[c.HIGH], first[c.TRADES]) == (t(0), 1, 1, 105.0, 2)
    # [15, 30): same trades, but vwap_day (cumulative since midnight) moved: emitted again, late_trades still 0
    second = rows.row(1, named=True)
    assert (second[c.TIMESTAMP_IN], second[c.REVISION], second[c.LATE_TRADES]) == (t(15), 1, 0)
    assert late.revisions == 2 and late.late_trades == 1
    # The same trade again is a duplicate, counted once and changing nothing.
    again = engine.step(ticks_of([(t(5), 4, 105.0)]), now=t(33))
    assert again.duplicates == 1 and again.candles.height == 0


def test_one_batch_that_revises_an_emitted_window_and_closes_a_new_one_does_not_crash():
    """Network jitter over --lateness straddling a window boundary: a late trade for [0, 15) and a trade at 31 s
    (closing [15, 30)) in the same micro-batch; the revision and the new window come out together."""
    engine = CandleEngine(**LIVE)
    engine.step(ticks_of([(t(1), 1, 100.0), (t(16), 2, 101.0)]), now=t(16.1))
    out = engine.step(ticks_of([(t(14.9), 3, 99.0), (t(31), 4, 102.0)]), now=t(31))
    assert rows_of(out)[:2] == [(t(0), None, 1), (t(15), None, 0)]
    ticks = ticks_of([(t(1), 1, 100.0), (t(16), 2, 101.0), (t(14.9), 3, 99.0), (t(31), 4, 102.0)])
    final = engine.step(ticks_of([]), now=t(31), final=True)
    assert_same(reference(ticks, timeframes=["15s", "1m"]), latest(pl.concat([out.candles, final.candles])))


@pytest.mark.parametrize("stamp, why", [
    (datetime(2100, 1, 1, tzinfo=timezone.utc), "ahead of the wall clock"),
    (datetime(1970, 1, 20, 13, 0, tzinfo=timezone.utc), "older than the revision horizon"),  # T in seconds, read as ms
    (int(t(0).timestamp()) * 1_000_000_000, "ahead of the wall clock"),  # T in us read as ms: the year ~55,000
])
def test_an_implausible_trade_time_is_quarantined_and_never_moves_the_watermark(stamp, why):
    engine = CandleEngine(**LIVE)
    engine.step(ticks_of([(t(1), 1, 100.0)]), now=t(1))
    tracemalloc.start()
    received = ticks_of([(stamp, 2, 100.0), (t(2), 3, 100.0)]).with_columns(pl.lit(t(2)).cast(pl.Datetime("us", "UTC")).alias(c.LOCAL_TIMESTAMP))
    out = engine.step(received, now=t(2))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert out.accepted == 1 and out.late.height == 1 and why in out.late[c.Q_REASON][0]
    assert engine.max_event == t(2) and out.candles.height == 0
    assert peak < 50e6 and engine.held() < 100


def test_a_replay_judges_times_against_their_recorded_receive_time_not_the_wall_clock():
    engine = CandleEngine(**{**LIVE, "live": False})
    recorded = ticks_of([(t(1), 1, 100.0), (t(2), 2, 100.0)])
    bogus = ticks_of([(datetime(2100, 1, 1, tzinfo=timezone.utc), 3, 100.0)]).with_columns(pl.lit(t(2)).alias(c.LOCAL_TIMESTAMP))
    out = engine.step(pl.concat([recorded, bogus]), now=t(2))
    assert out.accepted == 2 and "ahead of its receive time" in out.late[c.Q_REASON][0]


def test_windows_that_close_while_the_feed_is_down_are_feed_whatever_the_wall_clock():
    engine = CandleEngine(**LIVE, max_quiet=timedelta(seconds=5))
    engine.step(ticks_of([(t(1), 1, 100.0)]), now=t(1))
    engine.add_gaps([FeedGap("binance", ("BTCUSDT",), t(1), None, GAP_DISCONNECT)])
    # Down: the wall clock closes windows past max_quiet, every one of them feed.
    down = engine.step(ticks_of([]), now=t(62))
    assert rows_of(down) == [(t(0), c.GAP_FEED, 0), (t(15), c.GAP_FEED, 0), (t(30), c.GAP_FEED, 0), (t(45), c.GAP_FEED, 0)]
    assert down.candles.filter(pl.col(c.TIMEFRAME) == "1m")[c.GAP].to_list() == [c.GAP_FEED]
    # Back up: the reconnect's first trade closes the gap; windows after it are complete again.
    engine.add_gaps([FeedGap("binance", ("BTCUSDT",), t(1), t(64), GAP_DISCONNECT)])
    up = engine.step(ticks_of([(t(64), 2, 101.0), (t(80), 3, 101.0)]), now=t(80))
    assert rows_of(up) == [(t(60), c.GAP_FEED, 0)]
    after = engine.step(ticks_of([(t(95), 4, 101.0)]), now=t(95))
    assert rows_of(after) == [(t(75), None, 0)]


def test_before_its_first_trade_a_live_start_is_feed_and_so_is_its_first_window():
    """The source reports the startup gap on connect; the first window holds the start, so it is partial."""
    engine = CandleEngine(**LIVE)
    engine.add_gaps([FeedGap("binance", (), t(7), None, GAP_STARTUP)])  # all symbols, open until a first trade
    engine.add_gaps([FeedGap("binance", (), t(7), t(9), GAP_STARTUP)])
    out = engine.step(ticks_of([(t(9), 1, 100.0), (t(20), 2, 100.0), (t(40), 3, 100.0)]), now=t(40))
    assert rows_of(out) == [(t(0), c.GAP_FEED, 0), (t(15), None, 0)]


def test_a_gap_learnt_after_its_windows_were_emitted_revises_them_to_feed_never_silently_quiet():
    """A silent feed is noticed only after the watchdog's timeout, when windows after the last trade may already
    have closed as quiet: the gap, starting at the last trade, re-emits them as feed."""
    engine = CandleEngine(**LIVE, max_quiet=timedelta(seconds=30))
    engine.step(ticks_of([(t(1), 1, 100.0)]), now=t(1))
    quiet = engine.step(ticks_of([]), now=t(31))
    assert rows_of(quiet) == [(t(0), None, 0), (t(15), c.GAP_QUIET, 0)]
    engine.add_gaps([FeedGap("binance", ("BTCUSDT",), t(1), None, GAP_SILENT)])
    out = engine.step(ticks_of([]), now=t(32))
    assert rows_of(out) == [(t(0), c.GAP_FEED, 1), (t(15), c.GAP_FEED, 1)]


def test_too_late_for_the_horizon_goes_to_quarantine():
    engine = CandleEngine(timeframes=["15s"], lateness=timedelta(seconds=1), horizon=timedelta(seconds=30))
    engine.step(ticks_of([(t(1), 1, 100.0), (t(100), 2, 101.0)]), now=t(100))
    out = engine.step(ticks_of([(t(2), 3, 99.0)]), now=t(101))
    assert out.late.height == 1 and out.accepted == 0
    assert "revision horizon" in out.late[c.Q_REASON][0]
    assert out.quarantined_by == {out.late[c.Q_REASON][0]: 1}


@pytest.mark.parametrize("ids", [
    [2**62, 1, 2, 3, 4],  # one huge id first must not hide the later trades
    [2, 1, 4, 3],  # swapped pairs
    [-5, -6, 7],  # negative ids
    [900, 13, 77_000, 5, 2**40],  # unordered, not consecutive (Hyperliquid)
])
def test_dedupe_is_by_exact_id_with_no_order_assumed(ids):
    engine = CandleEngine(**LIVE)
    rows = [(t(1 + i), tid, 100.0) for i, tid in enumerate(ids)]
    first = engine.step(ticks_of(rows), now=t(10))
    again = engine.step(ticks_of(rows[1:]), now=t(11))
    assert first.accepted == len(ids) and first.duplicates == 0
    assert again.accepted == 0 and again.duplicates == len(ids) - 1


def test_a_jump_in_time_is_a_feed_gap_not_millions_of_quiet_rows():
    """A replay across a year-long hole in its input: the windows inside the hole are not built."""
    engine = CandleEngine(timeframes=["15s", "1m", "1d"], live=False, lateness=timedelta(0))
    engine.step(ticks_of([(t(1), 1, 100.0)]), now=t(1))
    year = t(365 * 86400 + 5)
    out = engine.step(ticks_of([(year, 2, 101.0)]).with_columns(pl.lit(year).alias(c.LOCAL_TIMESTAMP)), now=year)
    final = engine.step(ticks_of([]), now=year, final=True)
    rows = pl.concat([out.candles, final.candles])
    assert rows.height < 20
    days = rows.filter(pl.col(c.TIMEFRAME) == "1d").sort(c.TIMESTAMP_IN)
    assert days.select(c.TIMESTAMP_IN, c.GAP).rows() == [(t(0), c.GAP_FEED), (t(365 * 86400), c.GAP_FEED)]


def test_a_trade_for_a_window_written_before_a_restart_is_quarantined_not_lost():
    first = CandleEngine(timeframes=["15s"], lateness=timedelta(seconds=0))
    stored = first.step(ticks_of([(t(1), 1, 100.0), (t(20), 2, 101.0)]), now=t(31)).candles
    restarted = CandleEngine(timeframes=["15s"], lateness=timedelta(seconds=0))
    restarted.warm(stored, restarted_at=t(40))
    out = restarted.step(ticks_of([(t(3), 9, 99.0), (t(41), 10, 102.0)]), now=t(41))
    assert out.accepted == 1 and out.late.height == 1
    assert "earlier run" in out.late[c.Q_REASON][0]


def test_state_stays_bounded_on_a_long_run():
    """An hour of two symbols: retained ticks cover the horizon, open windows the longest open window, the ledger
    the revisable windows, the tail its fixed rows per series; nothing grows with the run."""
    engine = CandleEngine(timeframes=["15s", "1m", "5m"], lateness=timedelta(seconds=1), horizon=timedelta(seconds=30))
    peaks = {"ticks": 0, "ledger": 0, "open": 0}
    for minute in range(60):
        rows = [(t(minute * 60 + s), f"{sym}{minute * 100 + s}", 100.0 + s % 7, sym) for s in range(0, 60, 2) for sym in "AB"]
        engine.step(ticks_of(rows), now=t(minute * 60 + 59))
        peaks = {"ticks": max(peaks["ticks"], len(engine.store)), "ledger": max(peaks["ledger"], len(engine.ledger)),
                 "open": max(peaks["open"], engine.state.open.height)}
    # 2 symbols x (30 s horizon + 1 s lateness + a 15 s window + the 59 s batch) of one trade per 2 s
    assert peaks["ticks"] <= 2 * (30 + 1 + 15 + 60) // 2
    assert peaks["ledger"] <= 2 * (4 + 2 + 2) * 3 and peaks["open"] <= 2 * 20 + 8
    assert engine.state.tail.height <= 2 * 3 * engine.spec.tail_rows and engine.state.gaps.height == 0


def test_a_gap_healed_by_a_complete_fill_gives_the_uninterrupted_candles_as_revisions():
    """A 15 s outage, then the missing trades fetched after the reconnect: fed in as late trades with the gap
    healed, every window reads as if the feed had never dropped (the highest revision), and none says feed."""
    trades = [(t(s), i, 100.0 + (i % 7)) for i, s in enumerate([1, 5, 9, 14, 18, 22, 26, 31, 35, 41, 47, 52, 58,
                                                                   63, 66, 71, 77, 84, 90, 97, 101], start=1)]
    live = [row for row in trades if not t(20) < row[0] < t(36)]
    missed = [row for row in trades if t(20) < row[0] < t(36)]
    engine = CandleEngine(**LIVE)
    emitted = [engine.step(ticks_of([row for row in live if row[0] <= t(18)]), now=t(18.5)).candles]
    gap = FeedGap("binance", ("BTCUSDT",), t(18), None, GAP_DISCONNECT)
    engine.add_gaps([gap])
    emitted.append(engine.step(ticks_of([]), now=t(34)).candles)  # down: 15 s windows close as feed
    engine.add_gaps([FeedGap("binance", ("BTCUSDT",), t(18), t(41), GAP_DISCONNECT)])
    emitted.append(engine.step(ticks_of([row for row in live if t(36) <= row[0] <= t(47)]), now=t(47.5)).candles)
    flagged = pl.concat(emitted).filter(pl.col(c.GAP) == c.GAP_FEED)
    assert flagged.height > 0
    # the windows made whole are counted: the 15 s ones at 15 and 30 s (emitted as feed) and the 1 m one at 0 s
    # (not emitted yet)
    assert flagged.select(c.TIMEFRAME, c.TIMESTAMP_IN).unique().sort(c.TIMESTAMP_IN).rows() == [("15s", t(15)), ("15s", t(30))]
    assert engine.heal([FeedGap("binance", ("BTCUSDT",), t(18), t(41), GAP_DISCONNECT)]) == 3
    emitted.append(engine.step(ticks_of(missed), now=t(48)).candles)
    rest = [row for row in live if row[0] > t(47)]
    emitted.append(engine.step(ticks_of(rest), now=t(101.5)).candles)
    emitted.append(engine.step(ticks_of([]), now=t(101.5), final=True).candles)
    got = latest(pl.concat(emitted))
    early = (pl.col(c.TIMEFRAME) == "15s") & (pl.col(c.TIMESTAMP_IN) < t(90)) | (pl.col(c.TIMESTAMP_IN) < t(60))
    assert got.filter(early).get_column(c.GAP).to_list().count(c.GAP_FEED) == 0  # only the input's end is feed
    want = reference(ticks_of(trades), timeframes=LIVE["timeframes"])
    assert_same(want, got)
    assert pl.concat(emitted).filter(pl.col(c.TIMESTAMP_IN) == t(15), pl.col(c.TIMEFRAME) == "15s")[c.REVISION].max() >= 1


def test_healing_an_unknown_gap_changes_nothing():
    engine = CandleEngine(**LIVE)
    engine.step(ticks_of([(t(1), 1, 100.0)]), now=t(1))
    engine.add_gaps([FeedGap("binance", ("BTCUSDT",), t(1), t(20), GAP_DISCONNECT)])
    assert engine.heal([FeedGap("binance", ("BTCUSDT",), t(2), t(20), GAP_DISCONNECT)]) == 0
    assert engine.heal([FeedGap("binance", ("ETHUSDT",), t(1), t(20), GAP_DISCONNECT)]) == 0
