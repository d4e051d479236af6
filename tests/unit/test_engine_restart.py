"""Restarts are exact: a stream engine warmed from what a real sink stored continues as if it never stopped."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from mdstream.contract import columns as c
from mdstream.contract.schema import TICK_SCHEMA, conform
from mdstream.engine.incremental import CandleEngine
from mdstream.sinks import base
from mdstream.sinks.duckdb import DuckDBSink
from mdstream.sinks.parquet import ParquetSink
from support.engine_frames import VALUES, assert_same, latest, reference, t

TIMEFRAMES = ("15s", "1m", "5m", "1d")
KEY = [*c.SERIES_KEY, c.TIMESTAMP_IN]


def market(hours: float, *, seed: int = 5, symbols=("BTCUSDT", "ETHUSDT")) -> pl.DataFrame:
    """A trade every ~4 s per symbol from midnight for `hours`, random-walk prices, receive time = event time."""
    rng = np.random.default_rng(seed)
    frames = []
    for k, symbol in enumerate(symbols):
        n = int(hours * 900)
        ts = np.sort(rng.uniform(0, hours * 3600e6, n)).astype(np.int64) + int(t(0).timestamp() * 1e6)
        frames.append(pl.DataFrame({
            c.EXCHANGE: "binance", c.SYMBOL: symbol, c.TIMESTAMP: ts, c.LOCAL_TIMESTAMP: ts,
            c.ID: [f"{k}-{i}" for i in range(n)], c.SIDE: np.where(rng.random(n) < 0.5, "buy", "sell"),
            c.PRICE: 100 * (k + 1) + np.cumsum(rng.normal(0, 0.05, n)).round(2), c.AMOUNT: rng.lognormal(0, 1, n),
        }))
    ticks = pl.concat(frames).with_columns(pl.col(c.TIMESTAMP, c.LOCAL_TIMESTAMP).cast(pl.Datetime("us", "UTC")))
    return conform(ticks.sort(c.TIMESTAMP), TICK_SCHEMA)


def feed(engine: CandleEngine, ticks: pl.DataFrame, sink, seconds: float = 20.0) -> None:
    """Ticks in arrival batches of `seconds`, each stepped at its last receive time; candles written and flushed."""
    edges = ticks.select((pl.col(c.TIMESTAMP).dt.epoch("us") // int(seconds * 1e6)).alias("_b"))
    for _, batch in ticks.with_columns(edges).group_by("_b", maintain_order=True):
        out = engine.step(batch.drop("_b"), now=batch[c.LOCAL_TIMESTAMP].max())
        if out.candles.height:
            sink.write(base.CANDLES, out.candles)
            sink.flush()


@pytest.fixture(params=["duckdb", "parquet"])
def sink_factory(request, tmp_path):
    """Opens the same store again on every call, as a restarted process does."""
    if request.param == "duckdb":
        return lambda: DuckDBSink(tmp_path / "x.duckdb", shared=True)
    return lambda: ParquetSink(tmp_path / "parquet")


@pytest.mark.slow
def test_a_restart_late_in_the_day_continues_vwap_day_and_every_feature_exactly(sink_factory):
    """Three hours of 15s windows (720 per series, more than any fixed read-back of 600) before the stop; the
    restarted engine, warmed from the sink, continues day totals, recursive features and the open 1d window."""
    ticks = market(3.5)
    stop = t(3 * 3600 + 7)  # mid-window
    before, after = ticks.filter(pl.col(c.TIMESTAMP) < stop), ticks.filter(pl.col(c.TIMESTAMP) >= stop)
    first = CandleEngine(TIMEFRAMES)
    sink = sink_factory()
    feed(first, before, sink)
    sink.close()
    # The process dies: ticks of windows it had not emitted are lost with it (they never reached the sink).
    sink = sink_factory()
    stored = sink.read_candles(exchange="binance", symbols=None, timeframes=TIMEFRAMES)
    assert stored.filter(pl.col(c.TIMEFRAME) == "15s").group_by(c.SYMBOL).len()["len"].min() > 600
    resume = stored.filter(pl.col(c.TIMEFRAME) == "15s")[c.TIMESTAMP_IN].max() + timedelta(seconds=15)
    second = CandleEngine(TIMEFRAMES)
    second.warm(stored, restarted_at=resume)
    replayed = ticks.filter(pl.col(c.TIMESTAMP) >= resume)  # the feed resumes at once (no downtime)
    feed(second, replayed, sink)
    final = second.step(ticks.clear(), now=ticks[c.TIMESTAMP].max(), final=True)
    sink.write(base.CANDLES, final.candles)
    sink.close()
    got = latest(sink_factory().read_candles(exchange="binance", symbols=None, timeframes=TIMEFRAMES, rows=100_000))
    lost = ticks.filter((pl.col(c.TIMESTAMP) < resume) & (pl.col(c.TIMESTAMP) >= resume))  # none: resume is a boundary
    assert lost.height == 0 and after.height
    # The feed resumed at the very window the stored run ended with: nothing is missing, so no window is feed
    # (but the input's end); every value and feature is the unbroken run's.
    expected = reference(ticks, [], timeframes=TIMEFRAMES)
    assert_same(expected.join(got.select(KEY), on=KEY, how="semi"), got.join(expected.select(KEY), on=KEY, how="semi"),
                [*VALUES, *c.FEATURE_COLUMNS, c.GAP])
    day = got.filter(pl.col(c.TIMEFRAME) == "1d").row(0, named=True)
    assert day[c.GAP] == c.GAP_FEED and day[c.TRADES] == ticks.height // 2


@pytest.mark.slow
def test_a_kill_before_the_daily_window_was_ever_written_rebuilds_it_from_the_stored_shorter_ones(sink_factory):
    """The job dies mid-day having written 15s..5m windows but never a 1d one; after the restart the 1d window
    holds the morning's trades (from the stored windows) plus the new ones, and says feed for the downtime."""
    ticks = market(2.0, seed=9)
    stop, back = t(3600 + 3), t(3600 + 300)
    first = CandleEngine(TIMEFRAMES)
    sink = sink_factory()
    feed(first, ticks.filter(pl.col(c.TIMESTAMP) < stop), sink)
    sink.close()
    sink = sink_factory()
    stored = sink.read_candles(exchange="binance", symbols=None, timeframes=TIMEFRAMES)
    assert stored.filter(pl.col(c.TIMEFRAME) == "1d").height == 0
    second = CandleEngine(TIMEFRAMES)
    second.warm(stored, restarted_at=back)
    feed(second, ticks.filter(pl.col(c.TIMESTAMP) >= back), sink)
    final = second.step(ticks.clear(), now=ticks[c.TIMESTAMP].max(), final=True)
    sink.write(base.CANDLES, final.candles)
    sink.close()
    got = latest(sink_factory().read_candles(exchange="binance", symbols=None, timeframes=TIMEFRAMES, rows=100_000))
    resume = stored.filter(pl.col(c.TIMEFRAME) == "15s")[c.TIMESTAMP_IN].max() + timedelta(seconds=15)
    seen = ticks.filter((pl.col(c.TIMESTAMP) < resume) | (pl.col(c.TIMESTAMP) >= back))
    expected = reference(seen, [(resume, back)], timeframes=TIMEFRAMES)
    days = got.filter(pl.col(c.TIMEFRAME) == "1d")
    assert days.height == 2 and (days[c.GAP] == c.GAP_FEED).all()
    assert_same(expected.filter(pl.col(c.TIMEFRAME) == "1d"), days, [*VALUES, "vwap_day", c.GAP])
    # vwap_day of every window after the restart counts the morning too, and says so only where it is complete
    later = got.filter((pl.col(c.TIMEFRAME) == "15s") & (pl.col(c.TIMESTAMP_IN) >= back))
    assert_same(expected.join(later.select(KEY), on=KEY, how="semi"), later, [*VALUES, "vwap_day"])
