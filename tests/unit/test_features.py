"""Features against TA-Lib 0.8.2 (the reference): values after warm-up and the exact warm-up positions."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import polars as pl
import talib

from mdstream.contract import columns as c
from mdstream.contract.schema import TICK_SCHEMA
from mdstream.kernel.candles import candles_from_ticks
from mdstream.kernel.features import STATE_COLUMNS, add_features
from support.features_data import random_candles

TOLERANCE = 1e-9
TRADES_CSV = "tardis/binance-futures_trades_2020-02-22_BTCUSDT.first9999rows.csv"


def values(frame: pl.DataFrame, name: str) -> np.ndarray:
    """A feature column as float64 numpy, null -> NaN (TA-Lib's warm-up marker)."""
    return frame[name].cast(pl.Float64).fill_null(np.nan).to_numpy()


def assert_matches(name: str, ours: np.ndarray, ref: np.ndarray, scale: float | np.ndarray = 0.0) -> None:
    """Same NaN positions as TA-Lib, and |ours - ref| <= 1e-9 * max(|ref|, scale) everywhere else."""
    ref = np.where(np.isfinite(ref), ref, np.nan)  # TA-Lib's +-inf (0/0 bands) is no value, as for us
    mismatch = np.flatnonzero(np.isnan(ours) != np.isnan(ref))
    assert mismatch.size == 0, f"{name}: null positions differ from TA-Lib first at row {mismatch[:5]}"
    ok = ~np.isnan(ref)
    assert ok.any(), f"{name}: nothing to compare"
    bound = TOLERANCE * np.maximum(np.abs(ref), scale)
    err = np.abs(ours - ref)
    worst = int(np.argmax(np.where(ok, err - bound, -np.inf)))
    assert err[worst] <= bound[worst], f"{name}: row {worst}: {ours[worst]!r} vs TA-Lib {ref[worst]!r}"


def log_returns(close: np.ndarray) -> np.ndarray:
    """ln(c_t / c_{t-1}) with NaN at the first row."""
    return np.concatenate([[np.nan], np.log(close[1:] / close[:-1])])


def check_against_talib(featured: pl.DataFrame) -> None:
    """Every TA-Lib-defined feature of one series matches TA-Lib on the series' closes."""
    close = featured[c.CLOSE].to_numpy()
    for n in (5, 10, 20):
        assert_matches(f"sma_{n}", values(featured, f"sma_{n}"), talib.SMA(close, n))
        assert_matches(f"ema_{n}", values(featured, f"ema_{n}"), talib.EMA(close, n))
    assert_matches("wma_5", values(featured, "wma_5"), talib.WMA(close, 5))
    assert_matches("rsi_5", values(featured, "rsi_5"), talib.RSI(close, 5), scale=1.0)
    upper, _, lower = talib.BBANDS(close, 20, 2.0, 2.0, matype=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        pctb = (close - lower) / (upper - lower)
    # %B is a ratio of order one: its error is measured against 1, not against a value that may be ~0.
    assert_matches("bb_pctb_20", values(featured, "bb_pctb_20"), pctb, scale=1.0)
    macd, signal, hist = talib.MACD(close, 12, 26, 9)
    # MACD lines are differences of prices: their error is measured against the price level.
    for name, ref in (("macd", macd), ("macd_signal", signal), ("macd_hist", hist)):
        assert_matches(name, values(featured, name), ref, scale=np.abs(close))
    returns = log_returns(close)
    for n in (5, 10):
        assert_matches(f"volatility_{n}", values(featured, f"volatility_{n}"), talib.STDDEV(returns, n, 1.0), 1e-12)


def test_random_walk_matches_talib() -> None:
    """5,000 candles with 10% empty ones and a 60-candle quiet stretch match TA-Lib after warm-up."""
    candles = random_candles(np.random.default_rng(7), 5000, flat=(2000, 2060))
    featured = add_features(candles.lazy()).collect()
    assert featured.height == 5000
    assert set(STATE_COLUMNS) <= set(featured.columns)
    check_against_talib(featured)


def test_quiet_start_rsi_is_zero_like_talib() -> None:
    """A series that has not moved yet: TA-Lib's RSI is 0 (no gain, no loss) and %B has no value."""
    candles = random_candles(np.random.default_rng(3), 80, flat=(1, 40))
    featured = add_features(candles.lazy()).collect()
    assert featured["rsi_5"][5] == 0.0
    assert featured["bb_pctb_20"][19] is None
    check_against_talib(featured)


def test_warm_up_rows() -> None:
    """Each feature's first value sits at its documented row; before it every value is null."""
    candles = random_candles(np.random.default_rng(11), 60, empty_share=0.0)
    featured = add_features(candles.lazy()).collect()
    first = {
        "sma_5": 4, "sma_10": 9, "sma_20": 19, "ema_5": 4, "ema_10": 9, "ema_20": 19, "wma_5": 4,
        "momentum_3": 3, "momentum_5": 5, "velocity": 1, "acceleration": 2, "volume_sma_20": 19,
        "volume_ratio": 19, "vwap_deviation": 0, "vwap_day": 0, "log_return": 1, "volatility_5": 5,
        "volatility_10": 10, "high_low_ratio": 0, "trade_intensity": 0, "avg_trade_size": 0, "amihud": 1,
        "kyle_lambda": 20, "roll_spread": 21, "cs_spread": 1, "rsi_5": 5, "bb_pctb_20": 19, "macd": 33,
        "macd_signal": 33, "macd_hist": 33,
    }
    assert set(first) == set(c.FEATURE_COLUMNS)
    for name, row in first.items():
        column = featured[name]
        assert column.dtype == pl.Float64, name
        assert column[:row].null_count() == row, f"{name} has a value before row {row}"
        if name != "roll_spread":  # null after warm-up whenever the change autocovariance is positive
            assert column[row:].null_count() == 0, f"{name} has a null after its warm-up"


def real_minute_candles(folder) -> pl.DataFrame:
    """1m candles of the real Binance futures trades, from the project's candle engine."""
    raw = pl.read_csv(folder / TRADES_CSV, schema_overrides={"id": pl.String})
    ticks = raw.with_columns(
        pl.from_epoch(c.TIMESTAMP, time_unit="us").dt.replace_time_zone("UTC"),
        pl.from_epoch(c.LOCAL_TIMESTAMP, time_unit="us").dt.replace_time_zone("UTC"),
    ).select([pl.col(name).cast(dtype) for name, dtype in TICK_SCHEMA.items()])
    now = datetime(2020, 2, 22, 3, tzinfo=timezone.utc)
    return candles_from_ticks(ticks, ["1m"], now=now).collect()


def test_real_trades_match_talib(real_data) -> None:
    """Features of real BTCUSDT 1m candles (00:00-02:05 UTC) match TA-Lib, and vwap_day the raw trades."""
    candles = real_minute_candles(real_data)
    assert candles.height == 126
    featured = add_features(candles.lazy()).collect()
    check_against_talib(featured)
    raw = pl.read_csv(real_data / TRADES_CSV)
    window = (pl.col(c.TIMESTAMP) // 60_000_000).alias("minute")
    per_minute = (
        raw.group_by(window).agg((pl.col(c.PRICE) * pl.col(c.AMOUNT)).sum().alias("qv"), pl.col(c.AMOUNT).sum().alias("v"))
        .sort("minute")
        .select((pl.col("qv").cum_sum() / pl.col("v").cum_sum()).alias("expected"))
    )
    np.testing.assert_allclose(featured["vwap_day"].to_numpy(), per_minute["expected"].to_numpy(), rtol=1e-12)
