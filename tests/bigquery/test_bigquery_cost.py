"""Billed bytes and monthly cost of BigQuery writes (no emulator needed)."""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pytest

from mdstream.contract import schema as s
from mdstream.sinks.base import CANDLES, TICKS
from mdstream.sinks.bigquery import cost
from mdstream.sinks.bigquery.schema import to_arrow
from support.bq_emulator import candles


def test_billed_bytes_follow_the_data_size_rules():
    table = pa.table({"s": pa.array(["ab", None, "héllo"]), "x": pa.array([1.0, None, 3.0]),
                      "t": pa.array([1, 2, 3], pa.timestamp("us", tz="UTC"))})
    # strings: (2+2) + null 0 + (2+6 bytes of UTF-8); floats: 2 non-null * 8; timestamps 3 * 8
    assert cost.billed_bytes(table) == 4 + 8 + 16 + 24


def test_candle_row_estimate_matches_real_rows():
    frame = candles("BTCUSDT", count=10, exchange="binance-futures")
    table = to_arrow(CANDLES, frame)
    # The fixture fills sma_5 only; the estimate assumes every feature column is set, gap null.
    nulls = sum(table.column(name).null_count for name in s.CANDLE_SCHEMA if name not in ("gap",)) // 10
    per_row = cost.candles_per_month(symbol="BTCUSDT", exchange="binance-futures", timeframes_=("1m",))
    assert per_row.billed_bytes // per_row.rows - nulls * cost.FIXED_BYTES == cost.billed_bytes(table) // 10


def test_monthly_estimates_one_symbol():
    candles_month = cost.candles_per_month()
    # 30 days: 172,800 (15s) + 43,200 (1m) + 8,640 (5m) + 2,880 (15m) + 180 (4h) + 30 (1d) windows
    assert candles_month.rows == 227_730
    assert candles_month.cost_usd == 0.0  # far inside the free 2 TiB
    assert candles_month.cost_usd_no_free_tier == pytest.approx(candles_month.billed_bytes / cost.GIB * 0.025)
    ticks = cost.ticks_per_month(20.0)
    assert ticks.rows == 51_840_000
    tick = to_arrow(TICKS, pl.DataFrame({"exchange": ["binance-futures"], "symbol": ["BTCUSDT"],
                                          "timestamp": [0], "local_timestamp": [0], "id": ["4237794300"],
                                          "side": ["sell"], "price": [9700.0], "amount": [0.1]},
                                         schema_overrides={"timestamp": s.TS, "local_timestamp": s.TS}))
    assert ticks.billed_bytes == ticks.rows * cost.billed_bytes(tick)


def test_summary_line():
    assert cost.summary(1234, 500_000) == "BigQuery: 1,234 rows streamed, ~0.5MB, $0.0000 cost"
    assert cost.summary(10, 4 * cost.GIB) == "BigQuery: 10 rows streamed, ~4295.0MB, $0.1000 cost"
