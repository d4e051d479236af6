"""Inverse instruments, property-based: candles equal a Decimal aggregation, and the stream engine and the SQL
recomputation agree with the batch candles.

Tolerance: a window sums at most a few hundred terms, each rounded once (amount * s / price), so the float sums
are within ~1e-13 relative of the exact (Decimal) values; the tests allow 1e-12.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ticks_strategies import tick_frames

from mdstream.contract import columns as c
from mdstream.contract.instruments import Instrument, builtin, to_frame
from mdstream.engine.incremental import CandleEngine
from mdstream.kernel.candles import candles_from_ticks
from support.contracts import as_ticks, assert_matches_decimal, decimal_candles
from support.recompute import sql_candles

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)
REL = 1e-12
DAY_US = int(datetime(2024, 8, 8, 23, 55, tzinfo=timezone.utc).timestamp() * 1_000_000)
INVERSE_PAIRS = {"BTCUSDT": "BTCUSD_PERP", "ETHUSDT": "ETHUSD_PERP"}
RULES = to_frame([builtin("binance-delivery", "BTCUSD_PERP"), builtin("binance-delivery", "ETHUSD_PERP")])
KEY = [c.EXCHANGE, c.SYMBOL, c.TIMEFRAME, c.TIMESTAMP_IN]
VALUES = [c.OPEN, c.HIGH, c.LOW, c.CLOSE, c.VOLUME, c.BASE_VOLUME, c.QUOTE_VOLUME, c.BUY_VOLUME, c.SELL_VOLUME, c.TRADES,
          c.VWAP]


@st.composite
def inverse_trades(draw) -> tuple[pl.DataFrame, float]:
    """Trades of one inverse series in Tardis format (sorted, increasing ids) and its contract size."""
    n = draw(st.integers(1, 150))
    offsets = sorted(draw(st.lists(st.integers(0, 600_000_000), min_size=n, max_size=n)))  # 10 minutes over midnight
    prices = draw(st.lists(st.integers(1, 2_000_000), min_size=n, max_size=n))  # ticks of 0.1 up to 200,000
    amounts = draw(st.lists(st.integers(1, 100_000), min_size=n, max_size=n))
    sides = draw(st.lists(st.sampled_from(["buy", "sell", "unknown"]), min_size=n, max_size=n))
    size = draw(st.sampled_from([1.0, 10.0, 100.0, 0.5]))
    frame = pl.DataFrame({
        c.EXCHANGE: ["bitmex"] * n, c.SYMBOL: ["XBTUSD"] * n, c.TIMESTAMP: [DAY_US + o for o in offsets],
        c.LOCAL_TIMESTAMP: [DAY_US + o + 500 for o in offsets], c.ID: [str(100 + i) for i in range(n)], c.SIDE: sides,
        c.PRICE: [p / 10 for p in prices], c.AMOUNT: [float(a) for a in amounts],
    })
    return frame, size


@settings(max_examples=60, deadline=None)
@given(inverse_trades())
def test_random_inverse_trades_equal_decimal_aggregation(trades):
    frame, size = trades
    rules = to_frame([Instrument("bitmex", "XBTUSD", "inverse", size, "USD")])
    out = candles_from_ticks(as_ticks(frame), ("1m", "5m", "1d"), now=NOW, instruments=rules).collect()
    for tf in ("1m", "5m", "1d"):
        assert_matches_decimal(out.filter(pl.col(c.TIMEFRAME) == tf), decimal_candles(frame, tf, "inverse", size), rel=REL)


def inverse_ticks(ticks: pl.DataFrame) -> pl.DataFrame:
    """tick_frames relabelled as Binance COIN-M perpetuals (100 USD BTC, 10 USD ETH contracts)."""
    return ticks.with_columns(pl.lit("binance-delivery").alias(c.EXCHANGE), pl.col(c.SYMBOL).replace(INVERSE_PAIRS))


def assert_close(expected: pl.DataFrame, actual: pl.DataFrame) -> None:
    """Same windows, the same values within REL (nulls equal)."""
    joined = expected.select(*KEY, *VALUES).join(actual.select(*KEY, *VALUES), on=KEY, how="full", suffix="_a")
    assert joined.filter(pl.col(c.OPEN).is_null() | pl.col(c.OPEN + "_a").is_null()).height == 0
    for name in VALUES:
        a, b = joined[name].cast(pl.Float64), joined[name + "_a"].cast(pl.Float64)
        assert (a.is_null() == b.is_null()).all(), name
        assert not ((a - b).abs() > REL * a.abs()).fill_null(False).any(), (name, joined.select(*KEY, name, name + "_a"))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tick_frames(max_rows=80))
def test_sql_recomputation_knows_the_inverse_rule(ticks):
    ticks = inverse_ticks(ticks)
    batch = candles_from_ticks(ticks, now=NOW, instruments=RULES).collect()
    sql = sql_candles(ticks, instruments=RULES)
    assert_close(batch.filter(pl.col(c.TRADES) > 0), sql.filter(pl.col(c.TRADES) > 0))


@settings(max_examples=30, deadline=None)
@given(tick_frames(max_rows=80), st.data())
def test_stream_engine_in_any_batches_gives_the_batch_inverse_candles(ticks, data):
    ticks = inverse_ticks(ticks).sort(c.TIMESTAMP, maintain_order=True)
    cuts = sorted(set(data.draw(st.lists(st.integers(1, max(1, ticks.height - 1)), max_size=6))))
    engine = CandleEngine(lateness=timedelta(seconds=1), instruments=RULES)
    out, start = [], 0
    for end in [*cuts, ticks.height]:
        batch = ticks.slice(start, end - start)
        if batch.height:
            out.append(engine.step(batch, now=batch[c.TIMESTAMP].max()).candles)
        start = end
    out.append(engine.step(ticks.clear(), now=ticks[c.TIMESTAMP].max(), final=True).candles)
    stream = pl.concat(out).sort(c.REVISION).unique(KEY, keep="last").filter(pl.col(c.TRADES) > 0)
    assert_close(candles_from_ticks(ticks, now=NOW, instruments=RULES).collect().filter(pl.col(c.TRADES) > 0), stream)


def test_decimal_oracle_sees_the_midnight_boundary():
    # A sanity check of the oracle itself: a trade at exactly midnight opens the next day's window.
    frame = pl.DataFrame({c.TIMESTAMP: [DAY_US + 299_999_999, DAY_US + 300_000_000], c.SIDE: ["buy", "sell"],
                          c.PRICE: [50_000.0, 40_000.0], c.AMOUNT: [1.0, 2.0]})
    days = decimal_candles(frame, "1d", "inverse", 100.0)
    assert [d.date() for d in days] == [date(2024, 8, 8), date(2024, 8, 9)]
