"""candles_from_ticks.sql against hand-computed candles, Binance's own klines and the Polars engine."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mdstream.contract import columns as c
from mdstream.contract import schema
from mdstream.kernel.candles import candles_from_ticks
from mdstream.ops.verify import diff_candles
from support.recompute import NOW, read_trades, sql_candles

T0 = datetime(2020, 2, 22, tzinfo=timezone.utc)


def tick(seconds: float, price: float, amount: float, side: str, trade_id: str | None, local_ms: int = 0) -> dict:
    """One tick `seconds` after T0."""
    at = T0 + timedelta(microseconds=round(seconds * 1e6))
    return {c.EXCHANGE: "x", c.SYMBOL: "S", c.TIMESTAMP: at, c.LOCAL_TIMESTAMP: at + timedelta(milliseconds=local_ms),
            c.ID: trade_id, c.SIDE: side, c.PRICE: price, c.AMOUNT: amount}


def test_hand_computed_minutes():
    ticks = pl.DataFrame([
        tick(5.0, 10.0, 1.0, "buy", "8"),
        tick(30.0, 12.0, 2.0, "sell", "10"),   # same time as the next: id 9 < 10 numerically, so 9 comes first
        tick(30.0, 11.0, 1.0, "buy", "9"),
        tick(60.0, 13.0, 1.0, "buy", "11"),    # exactly 00:01:00 belongs to the 00:01 minute
        tick(180.5, 9.0, 4.0, "unknown", "12"),  # 00:02 has no trade
    ])
    out = sql_candles(ticks).filter(pl.col(c.TIMEFRAME) == "1m").sort(c.TIMESTAMP_IN)
    assert out[c.TIMESTAMP_IN].to_list() == [T0 + timedelta(minutes=m) for m in range(4)]
    rows = out.select(c.OPEN, c.HIGH, c.LOW, c.CLOSE, c.VOLUME, c.QUOTE_VOLUME, c.BUY_VOLUME, c.SELL_VOLUME, c.TRADES, c.VWAP).rows()
    assert rows == [
        (10.0, 12.0, 10.0, 12.0, 4.0, 45.0, 2.0, 2.0, 3, 11.25),
        (13.0, 13.0, 13.0, 13.0, 1.0, 13.0, 1.0, 0.0, 1, 13.0),
        (13.0, 13.0, 13.0, 13.0, 0.0, 0.0, 0.0, 0.0, 0, None),
        (9.0, 9.0, 9.0, 9.0, 4.0, 36.0, 0.0, 0.0, 1, 9.0),
    ]
    assert out[c.FIRST_TRADE_AT][0] == T0 + timedelta(seconds=5)
    assert out[c.LAST_TRADE_AT][2] is None
    one_day = sql_candles(ticks).filter(pl.col(c.TIMEFRAME) == "1d")
    assert one_day.select(c.TIMESTAMP_IN, c.OPEN, c.CLOSE, c.TRADES).rows() == [(T0, 10.0, 9.0, 5)]
    bounded = sql_candles(ticks, start=T0 + timedelta(minutes=1), end=T0 + timedelta(minutes=3))
    assert bounded.filter(pl.col(c.TIMEFRAME) == "1m")[c.TRADES].to_list() == [1]


def test_full_ties_keep_arrival_order():
    ticks = pl.DataFrame([tick(1.0, 5.0, 1.0, "buy", None), tick(1.0, 7.0, 1.0, "buy", None), tick(1.0, 6.0, 1.0, "sell", None)])
    out = sql_candles(ticks).filter(pl.col(c.TIMEFRAME) == "15s")
    assert out.select(c.OPEN, c.CLOSE).rows() == [(5.0, 6.0)]


def test_real_file_matches_binance_klines(real_data):
    out = sql_candles(read_trades(real_data)).filter(pl.col(c.TIMEFRAME) == "1m")
    klines = pl.read_csv(real_data / "klines" / "BTCUSDT-um-1m-2020-02-22_0000-0206.csv").with_columns(
        pl.from_epoch("open_time", time_unit="ms").dt.replace_time_zone("UTC").dt.cast_time_unit("us").alias(c.TIMESTAMP_IN)
    )
    joined = out.join(klines, on=c.TIMESTAMP_IN).filter(
        pl.col(c.TIMESTAMP_IN).is_between(T0 + timedelta(minutes=1), T0 + timedelta(hours=2, minutes=4))
    )
    assert joined.height == 124
    for ours, theirs in ((c.OPEN, "open"), (c.HIGH, "high"), (c.LOW, "low"), (c.CLOSE, "close"),
                         (c.VOLUME, "volume"), (c.QUOTE_VOLUME, "quote_volume"), (c.BUY_VOLUME, "taker_buy_volume")):
        worst = joined.select(((pl.col(ours) - pl.col(theirs)).abs() / pl.col(theirs).abs()).max()).item()
        assert worst < 1e-9, (ours, worst)
    assert (joined[c.TRADES] == joined["count"]).all()


def test_real_file_matches_the_engine(real_data):
    ticks = read_trades(real_data)
    expected = sql_candles(ticks)
    engine = candles_from_ticks(ticks.lazy(), now=NOW).collect()
    assert expected.height == engine.height == 667
    mismatches = diff_candles(expected, engine)
    assert mismatches.height == 0, mismatches.head(10)


@st.composite
def random_ticks(draw) -> pl.DataFrame:
    """Ticks of up to two symbols over three hours, with ties in time, shuffled order, some null ids.
    Receive times differ by row so that no two trades tie on every ordering key (the order of full ties is
    arrival order, checked by hand in test_full_ties_keep_arrival_order)."""
    n = draw(st.integers(1, 60))
    rows = []
    for i in range(n):
        seconds = draw(st.one_of(st.integers(0, 3 * 3600).map(float), st.floats(0, 3 * 3600, allow_nan=False)))
        rows.append(tick(
            seconds,
            price=draw(st.floats(1, 1e5, allow_nan=False)),
            amount=draw(st.floats(1e-6, 100, allow_nan=False)),
            side=draw(st.sampled_from(["buy", "sell", "unknown"])),
            trade_id=draw(st.one_of(st.none(), st.integers(0, 10**6).map(str))),
            local_ms=draw(st.sampled_from([0, 1000])) + i,
        ) | {c.SYMBOL: draw(st.sampled_from(["A", "B"]))})
    return schema.conform(pl.DataFrame(rows), schema.TICK_SCHEMA)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_ticks())
def test_random_ticks_match_the_engine(ticks):
    expected = sql_candles(ticks)
    engine = candles_from_ticks(ticks.lazy(), now=NOW).collect()
    assert expected.height == engine.height
    mismatches = diff_candles(expected, engine)
    assert mismatches.height == 0, mismatches.head(10)
