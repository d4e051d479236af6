"""The stream engine against the backfill: same ticks, any batching, any jitter within the lateness."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from ticks_strategies import tick_frames

from mdstream.contract import columns as c
from mdstream.contract.feed import FeedGap
from mdstream.contract.schema import CANDLE_SCHEMA, conform
from mdstream.engine.incremental import CandleEngine
from mdstream.jobs.backfill import process_day
from mdstream.kernel.candles import candles_from_ticks
from mdstream.kernel.features import STATE_COLUMNS, add_features

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)
KEY = [*c.SERIES_KEY, c.TIMESTAMP_IN]
COMPARED = [c.OPEN, c.HIGH, c.LOW, c.CLOSE, c.VOLUME, c.QUOTE_VOLUME, c.BUY_VOLUME, c.SELL_VOLUME, c.TRADES, c.VWAP,
            c.FIRST_TRADE_AT, c.LAST_TRADE_AT, c.GAP, *c.FEATURE_COLUMNS]


def backfill_of(ticks: pl.DataFrame) -> pl.DataFrame:
    candles = candles_from_ticks(ticks, now=NOW)
    featured = add_features(candles).collect(engine="in-memory").drop(STATE_COLUMNS)
    return conform(featured, CANDLE_SCHEMA)


def latest(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.sort(c.REVISION).unique(KEY, keep="last")


def assert_same(expected: pl.DataFrame, actual: pl.DataFrame, rel: float = 1e-9) -> None:
    joined = expected.join(actual, on=KEY, how="left", suffix="_s")
    assert joined.filter(pl.col(c.OPEN + "_s").is_null()).height == 0, "windows missing from the stream"
    for col in COMPARED:
        a, b = joined[col], joined[col + "_s"]
        assert (a.is_null() == b.is_null()).all(), (col, joined.filter(a.is_null() != b.is_null()).select(*KEY[1:], col, col + "_s", c.CLOSE, c.TRADES).rows())
        if a.dtype == pl.Float64:
            bad = ((a - b).abs() > rel * a.abs().clip(lower_bound=1.0)).fill_null(False)
        else:
            bad = (a != b).fill_null(False)
        assert not bad.any(), (col, joined.filter(bad).select(*KEY, col, col + "_s").head(5))


@settings(max_examples=40, deadline=None)
@given(tick_frames(max_rows=80), st.data())
def test_any_batching_and_jitter_within_lateness_gives_the_backfill(ticks, data):
    lateness = timedelta(milliseconds=800)
    delays = data.draw(st.lists(st.integers(0, 799_000), min_size=ticks.height, max_size=ticks.height))
    arrivals = ticks.with_columns(
        (pl.col(c.TIMESTAMP) + pl.Series(delays).cast(pl.Duration("us"))).alias("_arrival")
    ).sort("_arrival", maintain_order=True)
    cuts = sorted(set(data.draw(st.lists(st.integers(1, max(1, ticks.height - 1)), max_size=8))))
    engine = CandleEngine(lateness=lateness)
    out, start = [], 0
    for end in [*cuts, ticks.height]:
        batch = arrivals.slice(start, end - start)
        if batch.height:
            out.append(engine.step(batch.drop("_arrival"), now=batch["_arrival"].max()).candles)
        start = end
    out.append(engine.step(ticks.clear(), now=arrivals["_arrival"].max(), final=True).candles)
    stream = pl.concat(out)
    assert stream[c.REVISION].max() == 0, "jitter within the lateness must not cause revisions"
    assert stream.unique(KEY).height == stream.height, "a window was emitted twice"
    assert_same(backfill_of(ticks), latest(stream))


def test_real_day_in_small_batches_equals_backfill(real_data):
    from mdstream.inputs.tardis import read_trades

    ticks = read_trades(real_data / "tardis/binance-futures_trades_2020-02-22_BTCUSDT.first9999rows.csv", now=NOW).ticks
    expected, _ = process_day(ticks, day=date(2020, 2, 22), timeframes=["15s", "1m", "5m", "15m", "4h", "1d"],
                              now=NOW, end=None)
    engine = CandleEngine()
    out = []
    for i in range(0, ticks.height, 700):
        batch = ticks.slice(i, 700)
        out.append(engine.step(batch, now=batch[c.LOCAL_TIMESTAMP].max()).candles)
    out.append(engine.step(ticks.clear(), now=ticks[c.LOCAL_TIMESTAMP].max(), final=True).candles)
    stream = latest(pl.concat(out))
    assert stream.height == expected.height
    assert_same(expected, stream)


def _ticks(rows):
    return pl.DataFrame(
        [{c.EXCHANGE: "binance", c.SYMBOL: "BTCUSDT", c.TIMESTAMP: ts, c.LOCAL_TIMESTAMP: ts, c.ID: str(i),
          c.SIDE: "buy", c.PRICE: p, c.AMOUNT: 1.0} for ts, i, p in rows]
    ).with_columns(pl.col(c.TIMESTAMP, c.LOCAL_TIMESTAMP).dt.cast_time_unit("us"))


def t(seconds: float) -> datetime:
    return datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=seconds)


def test_quiet_market_closes_on_the_wall_clock_and_late_trade_revises():
    engine = CandleEngine(timeframes=["15s", "1m"], lateness=timedelta(seconds=1))
    first = engine.step(_ticks([(t(1), 1, 100.0)]), now=t(2))
    assert first.candles.height == 0
    # No trade after the window, yet it closes once the clock passes its end + lateness.
    closed = engine.step(_ticks([])[:0] if False else _ticks([(t(1), 1, 100.0)]).clear(), now=t(16.5))
    row = closed.candles.row(0, named=True)
    assert (row[c.TIMEFRAME], row[c.TIMESTAMP_IN], row[c.CLOSE], row[c.REVISION]) == ("15s", t(0), 100.0, 0)
    assert row[c.LATENCY_MS] == 1500.0
    quiet = engine.step(_ticks([(t(1), 1, 100.0)]).clear(), now=t(31.5))
    assert quiet.candles.row(0, named=True)[c.GAP] == c.GAP_QUIET
    # A trade for the emitted 00:00:00 window: a revision with late_trades = 1, not a drop.
    late = engine.step(_ticks([(t(5), 2, 105.0)]), now=t(32))
    rev = late.candles.filter(pl.col(c.TIMEFRAME) == "15s").row(0, named=True)
    assert (rev[c.TIMESTAMP_IN], rev[c.REVISION], rev[c.LATE_TRADES], rev[c.HIGH], rev[c.TRADES]) == (t(0), 1, 1, 105.0, 2)
    assert late.revisions == 1 and late.late_trades == 1
    # The same trade again is a duplicate, counted once.
    again = engine.step(_ticks([(t(5), 2, 105.0)]), now=t(33))
    assert again.duplicates == 1 and again.candles.height == 0


def test_too_late_for_the_horizon_goes_to_quarantine():
    engine = CandleEngine(timeframes=["15s"], lateness=timedelta(seconds=1), horizon=timedelta(seconds=30))
    engine.step(_ticks([(t(1), 1, 100.0), (t(100), 2, 101.0)]), now=t(100))
    out = engine.step(_ticks([(t(2), 3, 99.0)]), now=t(101))
    assert out.late.height == 1 and out.accepted == 0
    assert "revision horizon" in out.late[c.Q_REASON][0]


def test_feed_gap_marks_every_window_of_the_outage():
    engine = CandleEngine(timeframes=["15s", "1m"], lateness=timedelta(seconds=0))
    engine.step(_ticks([(t(1), 1, 100.0)]), now=t(1))
    engine.add_gaps([FeedGap("binance", ("BTCUSDT",), t(20), t(50), "disconnect")])
    out = engine.step(_ticks([(t(50), 5, 101.0), (t(70), 6, 102.0)]), now=t(70))
    gaps = out.candles.filter(pl.col(c.TIMEFRAME) == "15s").sort(c.TIMESTAMP_IN).select(c.TIMESTAMP_IN, c.GAP).rows()
    # [60, 75) is still open at t(70); every window the outage touched says feed, the one before does not.
    assert gaps == [(t(0), None), (t(15), c.GAP_FEED), (t(30), c.GAP_FEED), (t(45), c.GAP_FEED)]
    minute = out.candles.filter(pl.col(c.TIMEFRAME) == "1m").row(0, named=True)
    assert minute[c.GAP] == c.GAP_FEED


def test_a_trade_for_a_window_written_before_a_restart_is_quarantined_not_lost():
    first = CandleEngine(timeframes=["15s"], lateness=timedelta(seconds=0))
    stored = first.step(_ticks([(t(1), 1, 100.0), (t(20), 2, 101.0)]), now=t(31)).candles
    restarted = CandleEngine(timeframes=["15s"], lateness=timedelta(seconds=0))
    restarted.warm(stored, restarted_at=t(40))
    out = restarted.step(_ticks([(t(3), 9, 99.0), (t(41), 10, 102.0)]), now=t(41))
    assert out.accepted == 1 and out.late.height == 1
    assert "earlier run" in out.late[c.Q_REASON][0]
