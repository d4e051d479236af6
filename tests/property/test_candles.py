"""Candle engine: golden check against Binance's own klines, and the contract's invariants as properties."""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ticks_strategies import tick_frames

from mdstream.contract import columns as c
from mdstream.contract import timeframes as tfm
from mdstream.inputs.tardis import read_trades
from mdstream.kernel.candles import candles_from_ticks

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)
TRADES = "tardis/binance-futures_trades_2020-02-22_BTCUSDT.first9999rows.csv"
KLINES = "klines/BTCUSDT-um-1m-2020-02-22_0000-0206.csv"
BASE = [c.OPEN, c.HIGH, c.LOW, c.CLOSE, c.VOLUME, c.QUOTE_VOLUME, c.BUY_VOLUME, c.SELL_VOLUME, c.TRADES]


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def close_enough(a: pl.DataFrame, b: pl.DataFrame, cols=BASE, rel=1e-9) -> None:
    assert a.height == b.height
    for col in cols:
        x, y = a[col].to_list(), b[col].to_list()
        for i, (u, v) in enumerate(zip(x, y)):
            if u is None or v is None:
                assert u is v, (col, i, u, v)
            elif isinstance(u, float):
                assert abs(u - v) <= rel * max(1.0, abs(u), abs(v)), (col, i, u, v)
            else:
                assert u == v, (col, i, u, v)


def test_1m_candles_equal_binance_klines(real_data):
    """Every complete minute 00:01..02:04 equals Binance's kline: OHLC, volumes, count, taker-buy volume."""
    ticks = read_trades(real_data / TRADES, now=NOW).ticks
    ours = candles_from_ticks(ticks, ["1m"], now=NOW).collect()
    klines = pl.read_csv(real_data / KLINES).with_columns(
        pl.from_epoch("open_time", time_unit="ms").dt.replace_time_zone("UTC").alias(c.TIMESTAMP_IN)
    )
    joined = ours.join(klines, on=c.TIMESTAMP_IN, suffix="_binance").filter(
        pl.col(c.TIMESTAMP_IN).is_between(utc(2020, 2, 22, 0, 1), utc(2020, 2, 22, 2, 4))
    )
    assert joined.height == 124
    pairs = {c.OPEN: "open_binance", c.HIGH: "high_binance", c.LOW: "low_binance", c.CLOSE: "close_binance",
             c.VOLUME: "volume_binance", c.QUOTE_VOLUME: "quote_volume_binance", c.TRADES: "count",
             c.BUY_VOLUME: "taker_buy_volume"}
    for ours_col, theirs in pairs.items():
        diff = joined.select((pl.col(ours_col) - pl.col(theirs)).abs().max()).item()
        scale = joined.select(pl.col(theirs).abs().max()).item()
        assert diff <= 1e-12 * scale, (ours_col, diff)
    assert joined[c.GAP].null_count() == joined.height  # every one of those minutes traded


def reference(ticks: pl.DataFrame, tf: str) -> pl.DataFrame:
    """Candles by brute force in Python: the independent oracle for the vectorised engine."""
    width = tfm.duration_us(tf)
    rows = sorted(ticks.iter_rows(named=True), key=lambda r: (r[c.EXCHANGE], r[c.SYMBOL], r[c.TIMESTAMP],
                  r[c.LOCAL_TIMESTAMP], len(r[c.ID]), r[c.ID]))
    out: dict[tuple, dict] = {}
    for r in rows:
        us = int(r[c.TIMESTAMP].timestamp() * 1_000_000)
        start = datetime.fromtimestamp(us // width * width / 1e6, tz=timezone.utc)
        k = (r[c.EXCHANGE], r[c.SYMBOL], start)
        w = out.setdefault(k, {c.OPEN: r[c.PRICE], c.HIGH: r[c.PRICE], c.LOW: r[c.PRICE], c.VOLUME: 0.0,
                               c.QUOTE_VOLUME: 0.0, c.BUY_VOLUME: 0.0, c.SELL_VOLUME: 0.0, c.TRADES: 0})
        w[c.HIGH], w[c.LOW], w[c.CLOSE] = max(w[c.HIGH], r[c.PRICE]), min(w[c.LOW], r[c.PRICE]), r[c.PRICE]
        w[c.VOLUME] += r[c.AMOUNT]
        w[c.QUOTE_VOLUME] += r[c.PRICE] * r[c.AMOUNT]
        w[c.BUY_VOLUME] += r[c.AMOUNT] if r[c.SIDE] == c.SIDE_BUY else 0.0
        w[c.SELL_VOLUME] += r[c.AMOUNT] if r[c.SIDE] == c.SIDE_SELL else 0.0
        w[c.TRADES] += 1
    return pl.DataFrame(
        [{c.EXCHANGE: k[0], c.SYMBOL: k[1], c.TIMESTAMP_IN: k[2], **v} for k, v in sorted(out.items())]
    ).with_columns(pl.col(c.TIMESTAMP_IN).dt.cast_time_unit("us"))


def traded(candles: pl.DataFrame, tf: str) -> pl.DataFrame:
    return candles.filter((pl.col(c.TIMEFRAME) == tf) & (pl.col(c.TRADES) > 0)).sort(c.EXCHANGE, c.SYMBOL, c.TIMESTAMP_IN)


@settings(max_examples=60, deadline=None)
@given(tick_frames())
def test_each_timeframe_is_exactly_the_aggregation_of_its_ticks(ticks):
    candles = candles_from_ticks(ticks, now=NOW).collect()
    for tf in tfm.ALL_TIMEFRAMES:
        close_enough(traded(candles, tf), reference(ticks, tf))


@settings(max_examples=60, deadline=None)
@given(tick_frames())
def test_longer_timeframes_aggregate_the_shorter_ones(ticks):
    candles = candles_from_ticks(ticks, now=NOW).collect()
    short = traded(candles, "15s")
    for tf in tfm.ALL_TIMEFRAMES[1:]:
        width = tfm.duration_us(tf)
        rolled = (
            short.with_columns(((pl.col(c.TIMESTAMP_IN).dt.epoch("us") // width) * width).alias("_w"))
            .group_by(c.EXCHANGE, c.SYMBOL, "_w", maintain_order=True)
            .agg(pl.col(c.OPEN).first(), pl.col(c.HIGH).max(), pl.col(c.LOW).min(), pl.col(c.CLOSE).last(),
                 *[pl.col(k).sum() for k in (c.VOLUME, c.QUOTE_VOLUME, c.BUY_VOLUME, c.SELL_VOLUME, c.TRADES)])
        )
        close_enough(traded(candles, tf), rolled)


@settings(max_examples=40, deadline=None)
@given(tick_frames(), st.randoms(use_true_random=False))
def test_shuffling_rows_changes_nothing(ticks, rnd):
    order = list(range(ticks.height))
    rnd.shuffle(order)
    a = candles_from_ticks(ticks, now=NOW).collect().sort(c.SYMBOL, c.TIMEFRAME, c.TIMESTAMP_IN)
    b = candles_from_ticks(ticks[order], now=NOW).collect().sort(c.SYMBOL, c.TIMEFRAME, c.TIMESTAMP_IN)
    assert a.equals(b)


@settings(max_examples=40, deadline=None)
@given(tick_frames(), st.randoms(use_true_random=False))
def test_ids_read_as_numbers_give_the_same_candles(ticks, rnd):
    """A file read with numeric ids (the backfill without --store-ticks) and with text ids: same candles, also
    for rows out of order and trades tied on both times (the id then decides open and close)."""
    order = list(range(ticks.height))
    rnd.shuffle(order)
    frame = ticks[order].with_columns(pl.col(c.TIMESTAMP, c.LOCAL_TIMESTAMP).dt.epoch("us"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trades.csv"
        frame.write_csv(path)
        text = read_trades(path, now=NOW).ticks
        numeric = read_trades(path, now=NOW, numeric_ids=True).ticks
    assert numeric[c.ID].dtype == pl.Int64
    key = [c.SYMBOL, c.TIMEFRAME, c.TIMESTAMP_IN]
    a = candles_from_ticks(text, now=NOW).collect().sort(key)
    b = candles_from_ticks(numeric, now=NOW).collect().sort(key)
    assert a.equals(b)


@settings(max_examples=40, deadline=None)
@given(tick_frames())
def test_dense_grid_has_no_holes_and_empty_windows_carry_the_close(ticks):
    candles = candles_from_ticks(ticks, now=NOW).collect()
    for (symbol, tf), grp in candles.group_by(c.SYMBOL, c.TIMEFRAME):
        grp = grp.sort(c.TIMESTAMP_IN)
        steps = grp[c.TIMESTAMP_IN].diff().drop_nulls().dt.total_microseconds().unique().to_list()
        assert steps in ([], [tfm.duration_us(tf)])
        first_ts = ticks.filter(pl.col(c.SYMBOL) == symbol)[c.TIMESTAMP].min()
        assert grp[c.TIMESTAMP_IN][0] <= first_ts < grp[c.TIMESTAMP_IN][0] + timedelta(microseconds=tfm.duration_us(tf))
        empty = grp.with_columns(pl.col(c.CLOSE).shift(1).alias("_prev")).filter(pl.col(c.TRADES) == 0)
        assert (empty[c.GAP] == c.GAP_QUIET).all()
        assert empty[c.VWAP].null_count() == empty.height
        for col in (c.OPEN, c.HIGH, c.LOW, c.CLOSE):
            assert (empty[col] == empty["_prev"]).all()


def test_a_boundary_tick_lands_in_the_later_window():
    ts = [utc(2024, 1, 1, 0, 0, 59, 999999), utc(2024, 1, 1, 0, 1), utc(2024, 1, 2)]
    ticks = pl.DataFrame({
        c.EXCHANGE: ["x"] * 3, c.SYMBOL: ["S"] * 3, c.TIMESTAMP: ts, c.LOCAL_TIMESTAMP: ts, c.ID: ["1", "2", "3"],
        c.SIDE: ["buy", "sell", "buy"], c.PRICE: [1.0, 2.0, 3.0], c.AMOUNT: [1.0, 1.0, 1.0],
    }).with_columns(pl.col(c.TIMESTAMP, c.LOCAL_TIMESTAMP).dt.cast_time_unit("us"))
    candles = candles_from_ticks(ticks, now=NOW).collect()
    m = traded(candles, "1m")
    assert m[c.TIMESTAMP_IN].to_list() == [utc(2024, 1, 1, 0, 0), utc(2024, 1, 1, 0, 1), utc(2024, 1, 2)]
    assert m[c.CLOSE].to_list() == [1.0, 2.0, 3.0]
    days = candles.filter(pl.col(c.TIMEFRAME) == "1d").sort(c.TIMESTAMP_IN)
    assert days[c.TIMESTAMP_IN].to_list() == [utc(2024, 1, 1), utc(2024, 1, 2)]
    assert days[c.TRADES].to_list() == [2, 1]
    assert set(candles[c.TIMEFRAME].unique()) == set(tfm.ALL_TIMEFRAMES)


def test_latency_is_measured_from_the_window_end():
    ts = [utc(2024, 1, 1, 0, 0, 10)]
    ticks = pl.DataFrame({c.EXCHANGE: ["x"], c.SYMBOL: ["S"], c.TIMESTAMP: ts, c.LOCAL_TIMESTAMP: ts, c.ID: ["1"],
                          c.SIDE: ["buy"], c.PRICE: [1.0], c.AMOUNT: [1.0]}).with_columns(
        pl.col(c.TIMESTAMP, c.LOCAL_TIMESTAMP).dt.cast_time_unit("us"))
    now = utc(2024, 1, 1, 0, 1, 0, 250000)
    row = candles_from_ticks(ticks, ["1m"], now=now).collect().row(0, named=True)
    assert row[c.LATENCY_MS] == pytest.approx(250.0)
    assert row[c.TIMESTAMP_OUT] == now and row[c.REVISION] == 0 and row[c.LATE_TRADES] == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["binance", "deribit"]),
                          st.sampled_from(["BTCUSDT", "ETHUSDT", "X", "SOLUSDT", "ADAUSDT", "DOGEUSDT"])),
                min_size=1, max_size=60))
def test_split_series_equals_a_partition_by_exchange_and_symbol(keys):
    """Parts in first-seen order, each with its rows in order, every column (and its type) where it was; few
    series (split by filters) and many (by partition)."""
    from mdstream.kernel.candles import split_series

    frame = pl.DataFrame({c.EXCHANGE: [e for e, _ in keys], "n": list(range(len(keys))), c.SYMBOL: [s for _, s in keys]})
    expected = frame.partition_by([c.EXCHANGE, c.SYMBOL], maintain_order=True)
    got = split_series(frame)
    assert len(got) == len(expected)
    for part, want in zip(got, expected):
        assert part.equals(want) and part.schema == want.schema
