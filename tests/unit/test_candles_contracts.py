"""Candles of inverse, quanto and contract-sized linear instruments against a Decimal computation; spot unchanged."""

from __future__ import annotations

from datetime import date, datetime, timezone

import polars as pl
import pytest

from mdstream.contract import columns as c
from mdstream.contract.instruments import Instrument, builtin, to_frame
from mdstream.inputs.sample import trades_day
from mdstream.kernel.candles import candles_from_ticks, sparse_many
from mdstream.kernel.features import add_features
from support.contracts import as_ticks, assert_matches_decimal, contract_trades, decimal_candles

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)
DAY = date(2024, 8, 8)


def candles(ticks: pl.DataFrame, instruments: pl.DataFrame | None, timeframes=("1m", "15m")) -> pl.DataFrame:
    return candles_from_ticks(ticks, timeframes, now=NOW, instruments=instruments).collect()


@pytest.mark.parametrize("exchange, symbol, price, tick", [
    ("binance-delivery", "BTCUSD_PERP", 60_000.0, 0.1),    # 100 USD contracts
    ("binance-delivery", "ETHUSD_240927", 2_500.0, 0.01),  # 10 USD contracts
    ("bitmex", "XBTUSD", 9_000.0, 0.5),                    # 1 USD contracts
    ("bitmex", "ETHUSD", 230.0, 0.05),                     # quanto, 0.000001 XBT per 1 USD
    ("okex-swap", "BTC-USDT-SWAP", 60_000.0, 0.1),         # linear, 0.01 BTC contracts
])
def test_contract_candles_equal_decimal_aggregation(exchange, symbol, price, tick):
    frame = contract_trades(3_000, day=DAY, exchange=exchange, symbol=symbol, price=price, tick=tick, seed=3)
    instrument = builtin(exchange, symbol)
    out = candles(as_ticks(frame), to_frame([instrument]))
    for tf in ("1m", "15m"):  # the base timeframe from ticks, the longer one rolled up
        expected = decimal_candles(frame, tf, instrument.kind, instrument.contract_size)
        assert assert_matches_decimal(out.filter(pl.col(c.TIMEFRAME) == tf), expected) > 10


def test_inverse_volumes_are_the_ones_traders_expect():
    # 3 contracts of 100 USD at 50,000 and 1 at 40,000: 400 USD notional, 0.006 + 0.0025 = 0.0085 BTC.
    frame = pl.DataFrame({
        c.EXCHANGE: ["binance-delivery"] * 2, c.SYMBOL: ["BTCUSD_PERP"] * 2,
        c.TIMESTAMP: [1_723_075_200_000_000, 1_723_075_201_000_000], c.LOCAL_TIMESTAMP: [1_723_075_200_100_000] * 2,
        c.ID: ["1", "2"], c.SIDE: ["buy", "sell"], c.PRICE: [50_000.0, 40_000.0], c.AMOUNT: [3.0, 1.0],
    })
    row = candles(as_ticks(frame), to_frame([builtin("binance-delivery", "BTCUSD_PERP")]), ("1m",)).row(0, named=True)
    assert (row[c.VOLUME], row[c.BUY_VOLUME], row[c.SELL_VOLUME]) == (4.0, 3.0, 1.0)  # contracts
    assert row[c.QUOTE_VOLUME] == 400.0
    assert row[c.BASE_VOLUME] == pytest.approx(0.0085, rel=1e-15)
    assert row[c.VWAP] == pytest.approx(400 / 0.0085, rel=1e-15)  # 47,058.82: a price, between 40k and 50k


def test_spot_and_usd_m_candles_are_bit_identical_with_or_without_instruments():
    ticks = as_ticks(trades_day(20_000, day=DAY, seed=5))
    key = [c.TIMEFRAME, c.TIMESTAMP_IN]
    plain = candles(ticks, None, ("15s", "1m", "1d")).sort(key)
    listed = candles(ticks, to_frame([builtin("binance-futures", "BTCUSDT")]), ("15s", "1m", "1d")).sort(key)
    assert plain.drop(c.TIMESTAMP_OUT).equals(listed.drop(c.TIMESTAMP_OUT))
    assert plain[c.BASE_VOLUME].equals(plain[c.VOLUME].rename(c.BASE_VOLUME))


def test_batch_of_many_series_applies_each_series_own_rule():
    inverse = contract_trades(800, day=DAY, exchange="binance-delivery", symbol="BTCUSD_PERP", price=60_000, tick=0.1, seed=1)
    quanto = contract_trades(800, day=DAY, exchange="bitmex", symbol="ETHUSD", price=230, tick=0.05, seed=2)
    spot = trades_day(800, day=DAY, exchange="binance", symbol="BTCUSDT", seed=4)
    ticks = as_ticks(pl.concat([inverse, quanto, spot]))
    rules = to_frame([builtin("binance-delivery", "BTCUSD_PERP"), builtin("bitmex", "ETHUSD")])
    many = sparse_many(ticks, "1m", rules).sort(c.EXCHANGE, c.SYMBOL, c.TIMESTAMP_IN)
    one_by_one = pl.concat([
        candles(as_ticks(part), rules, ("1m",)).filter(pl.col(c.TRADES) > 0) for part in (inverse, quanto, spot)
    ]).sort(c.EXCHANGE, c.SYMBOL, c.TIMESTAMP_IN)
    for name in (c.VOLUME, c.BASE_VOLUME, c.QUOTE_VOLUME, c.TRADES):
        assert many[name].to_list() == pytest.approx(one_by_one[name].to_list(), rel=1e-12), name


def test_vwap_day_is_cumulative_notional_over_cumulative_base_volume():
    frame = contract_trades(2_000, day=DAY, exchange="binance-delivery", symbol="BTCUSD_PERP", price=60_000, tick=0.1, seed=9)
    out = add_features(candles_from_ticks(as_ticks(frame), ("1m",), now=NOW,
                                          instruments=to_frame([builtin("binance-delivery", "BTCUSD_PERP")]))).collect()
    expected = decimal_candles(frame, "1d", "inverse", 100.0)
    (day,) = expected.values()
    last = out.row(-1, named=True)
    assert last["vwap_day"] == pytest.approx(float(day[c.VWAP]), rel=1e-12)
    assert out[c.LOW].min() <= last["vwap_day"] <= out[c.HIGH].max()


def test_unlisted_series_is_linear_size_one():
    frame = contract_trades(300, day=DAY, exchange="okex-swap", symbol="SOL-USDT-SWAP", price=150, tick=0.01, seed=6)
    other = to_frame([Instrument("bitmex", "XBTUSD", "inverse", 1.0, "USD")])
    out = candles(as_ticks(frame), other, ("1m",)).filter(pl.col(c.TRADES) > 0)
    assert out[c.BASE_VOLUME].equals(out[c.VOLUME].rename(c.BASE_VOLUME))
