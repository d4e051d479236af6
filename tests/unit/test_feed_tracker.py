"""FeedTracker: trades already seen are dropped, id jumps become gaps with the right times, per symbol."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl

from mdstream.contract import columns as c
from mdstream.contract.schema import TICK_SCHEMA
from mdstream.sources.base import FeedTracker

T0 = datetime(2024, 8, 8, 12, 0, tzinfo=timezone.utc)
TID = "_trade_id"


def chunk(rows: list[tuple[str, str | None, int]]) -> pl.DataFrame:
    """Decoded ticks from (symbol, id, seconds after T0); the integer id column as a decoder adds it."""
    frame = pl.DataFrame(
        {
            c.EXCHANGE: ["binance"] * len(rows),
            c.SYMBOL: [s for s, _, _ in rows],
            c.TIMESTAMP: [T0 + timedelta(seconds=t) for _, _, t in rows],
            c.LOCAL_TIMESTAMP: [T0 + timedelta(seconds=t) for _, _, t in rows],
            c.ID: [i for _, i, _ in rows],
            c.SIDE: ["buy"] * len(rows),
            c.PRICE: [100.0] * len(rows),
            c.AMOUNT: [1.0] * len(rows),
        },
        schema=TICK_SCHEMA,
    )
    return frame.with_columns(pl.col(c.ID).cast(pl.Int64, strict=False).alias(TID))


def test_id_jumps_within_and_across_chunks_name_the_trades_around_them():
    tracker = FeedTracker("binance", ("BTCUSDT", "ETHUSDT"), check_id_jumps=True)
    first, gaps = tracker.accept(chunk([("BTCUSDT", "10", 0), ("ETHUSDT", "500", 1), ("BTCUSDT", "11", 2),
                                        ("BTCUSDT", "14", 3), ("ETHUSDT", "501", 4)]), TID)
    assert first.height == 5 and TID in first.columns
    assert [(g.symbols, g.reason, g.start, g.end) for g in gaps] == [
        (("BTCUSDT",), "trade id jump 11->14", T0 + timedelta(seconds=2), T0 + timedelta(seconds=3)),
    ]
    # across chunks: the previous id and time come from the chunk before; ETH continues without a jump
    second, gaps = tracker.accept(chunk([("ETHUSDT", "502", 5), ("BTCUSDT", "20", 6)]), TID)
    assert second.height == 2
    assert [(g.symbols, g.reason, g.start, g.end) for g in gaps] == [
        (("BTCUSDT",), "trade id jump 14->20", T0 + timedelta(seconds=3), T0 + timedelta(seconds=6)),
    ]


def test_trades_already_seen_are_dropped_in_order_and_text_ids_once():
    tracker = FeedTracker("tardis", ("XBTUSD",))
    out, _ = tracker.accept(chunk([("XBTUSD", "a-1", 0), ("XBTUSD", "a-2", 1), ("XBTUSD", "a-1", 2)]), TID)
    assert out[c.ID].to_list() == ["a-1", "a-2"]
    out, _ = tracker.accept(chunk([("XBTUSD", "a-2", 3), ("XBTUSD", "a-3", 4)]), TID)
    assert out[c.ID].to_list() == ["a-3"]
    ints = FeedTracker("binance", ("BTCUSDT",))
    ints.accept(chunk([("BTCUSDT", "5", 0), ("BTCUSDT", "6", 1)]), TID)
    out, _ = ints.accept(chunk([("BTCUSDT", "6", 2), ("BTCUSDT", "4", 2), ("BTCUSDT", "7", 3), ("BTCUSDT", "7", 3)]), TID)
    assert out[c.ID].to_list() == ["7"]
    assert out.columns == [*TICK_SCHEMA, TID]
