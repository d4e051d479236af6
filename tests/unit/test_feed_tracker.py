"""FeedTracker: exact dedupe with no ordering assumption, id jumps as gap hints, plausible prices, bounded memory."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl

from mdstream.contract import columns as c
from mdstream.contract.schema import TICK_SCHEMA
from mdstream.sources.base import FeedTracker

T0 = datetime(2024, 8, 8, 12, 0, tzinfo=timezone.utc)
TID = "_trade_id"


def chunk(rows: list[tuple], exchange: str = "binance") -> pl.DataFrame:
    """Decoded ticks from (symbol, id, seconds after T0[, price]); the integer id column as a decoder adds it."""
    frame = pl.DataFrame(
        {
            c.EXCHANGE: [exchange] * len(rows),
            c.SYMBOL: [r[0] for r in rows],
            c.TIMESTAMP: [T0 + timedelta(seconds=r[2]) for r in rows],
            c.LOCAL_TIMESTAMP: [T0 + timedelta(seconds=r[2]) for r in rows],
            c.ID: [r[1] for r in rows],
            c.SIDE: ["buy"] * len(rows),
            c.PRICE: [r[3] if len(r) > 3 else 100.0 for r in rows],
            c.AMOUNT: [1.0] * len(rows),
        },
        schema=TICK_SCHEMA,
    )
    return frame.with_columns(pl.col(c.ID).cast(pl.Int64, strict=False).alias(TID))


def accept(tracker: FeedTracker, rows: list[tuple]):
    return tracker.accept(chunk(rows, tracker.exchange), TID, now=T0)


def test_id_jumps_within_and_across_chunks_name_the_trades_around_them():
    tracker = FeedTracker("binance", ("BTCUSDT", "ETHUSDT"), check_id_jumps=True)
    first = accept(tracker, [("BTCUSDT", "10", 0), ("ETHUSDT", "500", 1), ("BTCUSDT", "11", 2),
                             ("BTCUSDT", "14", 3), ("ETHUSDT", "501", 4)])
    assert first.ticks.height == 5 and TID in first.ticks.columns and first.duplicates == 0
    assert [(g.symbols, g.reason, g.start, g.end) for g in first.gaps] == [
        (("BTCUSDT",), "trade id jump 11->14", T0 + timedelta(seconds=2), T0 + timedelta(seconds=3)),
    ]
    # across chunks: the previous id and time come from the chunk before; ETH continues without a jump
    second = accept(tracker, [("ETHUSDT", "502", 5), ("BTCUSDT", "20", 6)])
    assert second.ticks.height == 2
    assert [(g.symbols, g.reason, g.start, g.end) for g in second.gaps] == [
        (("BTCUSDT",), "trade id jump 14->20", T0 + timedelta(seconds=3), T0 + timedelta(seconds=6)),
    ]


def test_trades_reordered_within_a_chunk_raise_no_gap_and_keep_every_trade():
    tracker = FeedTracker("binance", ("BTCUSDT",), check_id_jumps=True)
    accept(tracker, [("BTCUSDT", "10", 0)])
    out = accept(tracker, [("BTCUSDT", "13", 1), ("BTCUSDT", "11", 1), ("BTCUSDT", "12", 1), ("BTCUSDT", "14", 2)])
    assert out.ticks[c.ID].to_list() == ["13", "11", "12", "14"] and out.gaps == []


def test_exact_repeats_are_dropped_and_counted_whatever_the_order():
    tracker = FeedTracker("tardis", ("XBTUSD",))
    out = accept(tracker, [("XBTUSD", "a-1", 0), ("XBTUSD", "a-2", 1), ("XBTUSD", "a-1", 2)])
    assert out.ticks[c.ID].to_list() == ["a-1", "a-2"] and out.duplicates == 1
    out = accept(tracker, [("XBTUSD", "a-2", 3), ("XBTUSD", "a-3", 4)])
    assert out.ticks[c.ID].to_list() == ["a-3"] and out.duplicates == 1
    ints = FeedTracker("binance", ("BTCUSDT",))
    accept(ints, [("BTCUSDT", "5", 0), ("BTCUSDT", "6", 1)])
    # 4 is older than anything seen but was never seen: it stays; 6 and the second 7 are repeats
    out = accept(ints, [("BTCUSDT", "6", 2), ("BTCUSDT", "4", 2), ("BTCUSDT", "7", 3), ("BTCUSDT", "7", 3)])
    assert out.ticks[c.ID].to_list() == ["4", "7"] and out.duplicates == 2
    assert out.ticks.columns == [*TICK_SCHEMA, TID]


def test_one_huge_id_does_not_hide_later_trades_nor_end_gap_detection():
    tracker = FeedTracker("binance", ("BTCUSDT",), check_id_jumps=True)
    accept(tracker, [("BTCUSDT", str(i), i) for i in range(100, 110)])
    out = accept(tracker, [("BTCUSDT", str(2**62), 10)])
    assert out.ticks.height == 1 and out.gaps == []  # a step no outage explains is no gap hint
    later = accept(tracker, [("BTCUSDT", str(i), i) for i in range(110, 2000)])
    assert later.ticks.height == 1890 and later.duplicates == 0 and later.gaps == []
    jump = accept(tracker, [("BTCUSDT", "2005", 2005)])
    assert [g.reason for g in jump.gaps] == ["trade id jump 1999->2005"]


def test_a_huge_first_id_restarts_the_sequence_when_real_ids_follow():
    tracker = FeedTracker("binance", ("BTCUSDT",), check_id_jumps=True)
    accept(tracker, [("BTCUSDT", str(2**62), 0)])
    out = accept(tracker, [("BTCUSDT", "100", 1), ("BTCUSDT", "101", 2)])
    assert out.ticks.height == 2 and out.gaps == []
    assert [g.reason for g in accept(tracker, [("BTCUSDT", "104", 3)]).gaps] == ["trade id jump 101->104"]


def test_swapped_and_negative_ids_keep_both_trades():
    tracker = FeedTracker("binance", ("BTCUSDT",), check_id_jumps=True)
    assert accept(tracker, [("BTCUSDT", "2", 0), ("BTCUSDT", "1", 0)]).ticks.height == 2
    out = accept(tracker, [("BTCUSDT", "-5", 1), ("BTCUSDT", "-6", 1), ("BTCUSDT", "3", 2)])
    assert out.ticks.height == 3 and out.duplicates == 0 and out.gaps == []


def test_ids_neither_consecutive_nor_ordered_keep_every_trade():
    """A Hyperliquid-like feed: large ids in no order, no gap hints (the venue promises no consecutive ids)."""
    ids = [int(x) for x in pl.int_range(0, 64, eager=True).shuffle(seed=3) * 7_919_993 + 10**11]
    tracker = FeedTracker("hyperliquid", ("BTC",))
    kept = [accept(tracker, [("BTC", str(i), n) for n, i in enumerate(ids[k:k + 8])]) for k in range(0, 64, 8)]
    assert sum(a.ticks.height for a in kept) == 64 and not any(a.gaps for a in kept)
    # the same ids again, in another order: every one a repeat
    again = accept(tracker, [("BTC", str(i), 70) for i in reversed(ids)])
    assert again.ticks.height == 0 and again.duplicates == 64


def test_memory_is_bounded_and_old_ids_are_forgotten():
    tracker = FeedTracker("binance", ("BTCUSDT",), recent_ids=1_000, recent_seconds=60)
    for start in range(0, 20_000, 500):
        accept(tracker, [("BTCUSDT", str(i), i / 100) for i in range(start, start + 500)])
    assert tracker._seen.height <= 8_000  # noqa: SLF001 (the memory itself is what is bounded)
    # an id from long ago is no longer remembered: it is kept (counted as new), never silently dropped
    assert accept(tracker, [("BTCUSDT", "3", 200)]).ticks.height == 1


def test_prices_far_from_the_series_are_quarantined_with_the_reason():
    tracker = FeedTracker("binance", ("BTCUSDT", "ETHUSDT"))
    normal = [("BTCUSDT", str(i), i, 60_000.0 + i) for i in range(10)] + [("ETHUSDT", str(i), i, 3000.0) for i in range(10)]
    assert accept(tracker, normal).quarantine.height == 0
    out = accept(tracker, [("BTCUSDT", "20", 20, 60_010.0), ("BTCUSDT", "21", 21, 6e7), ("ETHUSDT", "22", 21, 3000.0),
                           ("BTCUSDT", "23", 22, 60.0), ("ETHUSDT", "24", 22, 60_000.0)])
    assert out.ticks[c.ID].to_list() == ["20", "22"]
    assert out.quarantine[c.Q_FIELD].to_list() == ["price"] * 3
    assert out.quarantine[c.Q_REASON].unique().to_list() == ["price far from the series' recent prices"]
    assert "6e+07" in out.quarantine[c.Q_RAW][0] or "60000000" in out.quarantine[c.Q_RAW][0]


def test_without_history_each_symbol_of_a_chunk_is_checked_against_its_own_median():
    """A first chunk: a symbol with enough trades is its own reference, one with too few is not checked; with one
    symbol in the chunk as with several."""
    for symbols in (("BTCUSDT",), ("BTCUSDT", "ETHUSDT", "SOLUSDT")):
        tracker = FeedTracker("binance", symbols)
        rows = [("BTCUSDT", str(i), i, 60_000.0 + i) for i in range(9)] + [("BTCUSDT", "9", 9, 6.0)]
        if len(symbols) > 1:
            rows += [("ETHUSDT", str(10 + i), i, 3000.0) for i in range(6)] + [("ETHUSDT", "16", 7, 3e5)]
            rows += [("SOLUSDT", "17", 1, 150.0), ("SOLUSDT", "18", 2, 1.5e6)]  # two trades: no reference yet
        out = accept(tracker, rows)
        assert out.ticks.height + out.quarantine.height == len(rows)
        kept = set(out.ticks[c.PRICE].to_list())
        assert 6.0 not in kept and 3e5 not in kept
        assert out.quarantine.height == (2 if len(symbols) > 1 else 1)
        assert len(symbols) == 1 or 1.5e6 in kept


def test_a_tracker_given_everything_at_once_still_drops_repeats_within_it():
    """remember_keys=False (a replay's single accept): repeats inside the one chunk are dropped and counted."""
    tracker = FeedTracker("binance", ("BTCUSDT",), remember_keys=False)
    out = accept(tracker, [("BTCUSDT", "1", 1), ("BTCUSDT", "2", 2), ("BTCUSDT", "1", 3), ("BTCUSDT", "3", 4)])
    assert out.ticks[c.ID].to_list() == ["1", "2", "3"] and out.duplicates == 1
    assert tracker._seen.height == 0  # noqa: SLF001 (what is not kept is the point)


def test_an_outlier_id_inside_a_chunk_leaves_the_sequence_where_it_was():
    tracker = FeedTracker("binance", ("BTCUSDT",), check_id_jumps=True)
    accept(tracker, [("BTCUSDT", "99", 0)])
    out = accept(tracker, [("BTCUSDT", "100", 1), ("BTCUSDT", "101", 2), ("BTCUSDT", str(2**62), 3), ("BTCUSDT", "102", 4)])
    assert out.ticks.height == 4 and out.gaps == []
    assert tracker.last_id["BTCUSDT"] == 102
    assert [g.reason for g in accept(tracker, [("BTCUSDT", "105", 5)]).gaps] == ["trade id jump 102->105"]


def test_an_outage_starts_at_the_last_plausible_event_time():
    tracker = FeedTracker("binance", ("BTCUSDT",))
    accept(tracker, [("BTCUSDT", "1", 0)])
    assert tracker.down("disconnect", T0 + timedelta(seconds=5)).start == T0
    tracker = FeedTracker("binance", ("BTCUSDT",))
    accept(tracker, [("BTCUSDT", "1", 0), ("BTCUSDT", "2", 3 * 86_400)])  # one trade stamped days ahead
    assert tracker.down("disconnect", T0 + timedelta(seconds=5)).start == T0 + timedelta(seconds=5)


def test_a_feed_whose_clock_runs_ahead_starts_its_outage_at_its_last_event():
    tracker = FeedTracker("binance", ("BTCUSDT",))
    hours = 3 * 3600  # every trade three hours ahead of the receiving clock: the feed's clock, not an outlier
    tracker.accept(chunk([("BTCUSDT", str(i), hours + i) for i in range(5)]), TID, now=T0 + timedelta(seconds=4))
    assert tracker.down("disconnect", T0 + timedelta(seconds=5)).start == T0 + timedelta(seconds=hours + 4)


def test_an_outage_ends_at_the_first_event_past_its_start_not_at_a_late_trade():
    tracker = FeedTracker("binance", ("BTCUSDT", "ETHUSDT"))
    accept(tracker, [("BTCUSDT", "1", 0), ("ETHUSDT", "7", 2), ("BTCUSDT", "2", 10)])
    tracker.down("disconnect", T0 + timedelta(seconds=11))
    # a trade from before the outage, delivered after the reconnect, does not say the feed is back
    assert accept(tracker, [("ETHUSDT", "8", 5)]).gaps == []
    gaps = accept(tracker, [("BTCUSDT", "3", 40), ("ETHUSDT", "9", 41)]).gaps
    assert [(g.start, g.end, g.reason) for g in gaps] == [(T0 + timedelta(seconds=10), T0 + timedelta(seconds=40),
                                                           "disconnect")]


def test_a_message_held_from_before_the_outage_and_sent_on_reconnect_does_not_end_it():
    tracker = FeedTracker("binance", ("BTCUSDT",))
    tracker.accept(chunk([("BTCUSDT", "1", 0), ("BTCUSDT", "2", 10)]), TID, now=T0 + timedelta(seconds=10.2))
    tracker.down("disconnect", T0 + timedelta(seconds=11))  # starts at the last event, 10 s
    # stamped past the outage's start but 39 s before the rest of the chunk: a frame the server held back
    rows = [("BTCUSDT", "3", 10.5), ("BTCUSDT", "4", 50), ("BTCUSDT", "5", 50.2), ("BTCUSDT", "6", 50.4)]
    back = tracker.accept(chunk(rows), TID, now=T0 + timedelta(seconds=50.6))
    assert back.ticks.height == 4  # the held one is kept, as a (late) trade
    assert [(g.start, g.end) for g in back.gaps] == [(T0 + timedelta(seconds=10), T0 + timedelta(seconds=50))]


def test_a_startup_gap_ends_with_the_first_event_even_an_old_one():
    tracker = FeedTracker("binance", ("BTCUSDT",))
    tracker.down("startup", T0 + timedelta(days=400))  # nothing seen yet: it starts at the wall clock
    gaps = accept(tracker, [("BTCUSDT", "1", 0)]).gaps  # a recording of old trades
    assert [(g.start, g.end) for g in gaps] == [(T0 + timedelta(days=400), T0 + timedelta(days=400))]
