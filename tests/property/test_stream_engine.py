"""The stream engine against the batch reference: same ticks, any batching, any jitter within the lateness."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from ticks_strategies import tick_frames

from mdstream.contract import columns as c
from mdstream.engine.incremental import CandleEngine
from mdstream.jobs.backfill import process_day
from support.engine_frames import KEY, NOW, assert_same, latest, reference


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
    assert_same(reference(ticks), latest(stream))


@settings(max_examples=25, deadline=None)
@given(tick_frames(max_rows=60), st.data())
def test_a_replay_in_any_slices_gives_the_backfill(ticks, data):
    """Event time alone: one step may close many windows, and where the ticks are cut changes nothing."""
    ordered = ticks.sort(c.TIMESTAMP, maintain_order=True)
    cuts = sorted(set(data.draw(st.lists(st.integers(1, max(1, ordered.height - 1)), max_size=5))))
    engine = CandleEngine(live=False, lateness=timedelta(0))
    out, start = [], 0
    for end in [*cuts, ordered.height]:
        batch = ordered.slice(start, end - start)
        if batch.height:
            out.append(engine.step(batch, now=batch[c.TIMESTAMP].max()).candles)
        start = end
    out.append(engine.step(ordered.clear(), now=ordered[c.TIMESTAMP].max(), final=True).candles)
    stream = pl.concat(out)
    assert stream[c.REVISION].max() == 0 and stream.unique(KEY).height == stream.height
    assert_same(reference(ticks), latest(stream))


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
