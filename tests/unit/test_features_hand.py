"""Microstructure features on small series whose answers are worked out by hand."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest

from mdstream.kernel.features import add_features, tail_state
from support.features_data import candles_from_rows, minutes

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def featured(rows: list[dict], timeframe: str = "1m"):
    """add_features over hand-written rows, collected."""
    return add_features(candles_from_rows(rows, timeframe=timeframe).lazy()).collect(engine="in-memory")


def test_amihud() -> None:
    """|ln(101/100)| / 2020 on a traded candle; null on an empty one (no quote volume)."""
    times = minutes(T0, 3)
    out = featured([
        {"timestamp_in": times[0], "close": 100.0, "volume": 1.0},
        {"timestamp_in": times[1], "close": 101.0, "volume": 20.0, "quote_volume": 2020.0},
        {"timestamp_in": times[2], "close": 101.0, "volume": 0.0, "quote_volume": 0.0},
    ])
    assert out["amihud"].to_list()[0] is None
    assert out["amihud"][1] == pytest.approx(math.log(1.01) / 2020.0, rel=1e-15)
    assert out["amihud"][2] is None


def test_roll_spread_bid_ask_bounce() -> None:
    """Closes bouncing 100.0 / 100.1: every change pair multiplies to -0.01, means 0, so 2 sqrt(0.01) = 0.2."""
    times = minutes(T0, 23)
    out = featured([{"timestamp_in": t, "close": 100.0 + 0.1 * (i % 2)} for i, t in enumerate(times)])
    assert out["roll_spread"][:21].null_count() == 21
    assert out["roll_spread"][21] == pytest.approx(0.2, rel=1e-9)
    assert out["roll_spread"][22] == pytest.approx(0.2, rel=1e-9)


def test_roll_spread_trend_and_acceleration() -> None:
    """Steady trend: change covariance 0, spread 0. Accelerating trend: covariance > 0, spread null."""
    times = minutes(T0, 24)
    steady = featured([{"timestamp_in": t, "close": 100.0 + 0.5 * i} for i, t in enumerate(times)])
    assert steady["roll_spread"][23] == pytest.approx(0.0, abs=1e-12)
    speeding = featured([{"timestamp_in": t, "close": 100.0 + 0.01 * i * i} for i, t in enumerate(times)])
    assert speeding["roll_spread"][21:].null_count() == 3


def test_kyle_lambda_recovers_the_impact() -> None:
    """Returns built as 0.002 x signed volume give kyle_lambda = 0.002; constant signed volume gives null."""
    times = minutes(T0, 22)
    flows = [((i * 7) % 5) - 2.0 for i in range(22)]
    close, rows = 100.0, []
    for t, flow in zip(times, flows):
        close *= math.exp(0.002 * flow)
        rows.append({"timestamp_in": t, "close": close, "volume": 10.0, "buy": 5.0 + flow / 2, "sell": 5.0 - flow / 2})
    out = featured(rows)
    assert out["kyle_lambda"][:20].null_count() == 20
    assert out["kyle_lambda"][20] == pytest.approx(0.002, rel=1e-9)
    flat = featured([{**row, "buy": 6.0, "sell": 4.0} for row in rows])
    assert flat["kyle_lambda"][20:].null_count() == 2


def test_cs_spread_two_candles() -> None:
    """Corwin-Schultz on (H 101, L 99) then (H 101.5, L 99.5), and a jump that makes alpha negative -> 0."""
    times = minutes(T0, 2)
    out = featured([
        {"timestamp_in": times[0], "close": 100.0, "high": 101.0, "low": 99.0},
        {"timestamp_in": times[1], "close": 101.0, "high": 101.5, "low": 99.5},
    ])
    k = 3 - 2 * math.sqrt(2)
    beta = math.log(101 / 99) ** 2 + math.log(101.5 / 99.5) ** 2
    gamma = math.log(101.5 / 99) ** 2
    alpha = (math.sqrt(2 * beta) - math.sqrt(beta)) / k - math.sqrt(gamma / k)
    assert alpha > 0
    assert out["cs_spread"][0] is None
    assert out["cs_spread"][1] == pytest.approx(2 * (math.exp(alpha) - 1) / (1 + math.exp(alpha)), rel=1e-12)
    assert out["cs_spread"][1] == pytest.approx(0.0079089, rel=1e-5)
    jump = featured([
        {"timestamp_in": times[0], "close": 100.5, "high": 101.0, "low": 100.0},
        {"timestamp_in": times[1], "close": 110.5, "high": 111.0, "low": 110.0},
    ])
    assert jump["cs_spread"][1] == 0.0


def test_vwap_day_restarts_at_utc_midnight() -> None:
    """4h candles 16:00, 20:00 | 00:00 (empty), 04:00: 100, 3200/30, null, then 550/5 on the new day alone."""
    times = minutes(datetime(2024, 5, 1, 16, tzinfo=timezone.utc), 4, "4h")
    rows = [
        {"timestamp_in": times[0], "close": 100.0, "volume": 10.0, "quote_volume": 1000.0},
        {"timestamp_in": times[1], "close": 110.0, "volume": 20.0, "quote_volume": 2200.0},
        {"timestamp_in": times[2], "close": 110.0, "volume": 0.0, "quote_volume": 0.0},
        {"timestamp_in": times[3], "close": 111.0, "volume": 5.0, "quote_volume": 550.0},
    ]
    out = featured(rows, "4h")
    assert out["vwap_day"].to_list() == [100.0, 3200.0 / 30.0, None, 110.0]
    candles = candles_from_rows(rows, timeframe="4h")
    for split in (1, 2, 3):
        tail = tail_state(add_features(candles.head(split).lazy()))
        resumed = add_features(candles.tail(4 - split).lazy(), prior=tail).collect(engine="in-memory")
        assert resumed["vwap_day"].to_list() == out["vwap_day"].to_list()[split:]
