"""The feature registry is the one list of features: columns, schema, SQL views and docs derive from it, and its
warm-up counts are what the kernel computes."""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl

from mdstream.contract import columns as c
from mdstream.contract import features, schema
from mdstream.kernel.features import add_features
from mdstream.sinks import sqlfiles
from mdstream.sinks.duckdb_schema import ensure_schema
from support.features_data import random_candles

# The data contract's feature columns, in contract order: the registry must keep names and order.
CONTRACT = (
    "sma_5", "sma_10", "sma_20", "ema_5", "ema_10", "ema_20", "wma_5",
    "momentum_3", "momentum_5", "velocity", "acceleration",
    "volume_sma_20", "volume_ratio", "vwap_deviation", "vwap_day",
    "log_return", "volatility_5", "volatility_10", "high_low_ratio",
    "trade_intensity", "avg_trade_size", "amihud", "kyle_lambda", "roll_spread", "cs_spread",
    "rsi_5", "bb_pctb_20", "macd", "macd_signal", "macd_hist",
)


def test_columns_and_schema_derive_from_the_registry():
    """Names and order are the contract's; every feature is a Float64 candle column with the registry's text."""
    assert features.NAMES == CONTRACT == c.FEATURE_COLUMNS
    assert c.CANDLE_COLUMNS[-len(CONTRACT):] == CONTRACT
    for feature in features.FEATURES:
        assert schema.CANDLE_SCHEMA[feature.name] == pl.Float64
        assert schema.DESCRIPTIONS[feature.name] == feature.description
        assert "\n" not in feature.description and "[" in feature.description, f"{feature.name}: formula [unit]"


def test_sql_features_view_lists_the_registry():
    """Both dialects' `features` view selects the key columns then every registered feature, in order."""
    for dialect in ("duckdb", "bigquery"):
        assert "${feature_columns}" not in sqlfiles.read(f"{dialect}/views.sql")
    con = duckdb.connect()
    ensure_schema(con)
    columns = tuple(row[0] for row in con.execute("DESCRIBE features").fetchall())
    assert columns == (c.EXCHANGE, c.SYMBOL, c.TIMEFRAME, c.TIMESTAMP_IN, c.CLOSE, c.GAP, *CONTRACT)


def test_warm_up_is_what_the_kernel_computes():
    """Each feature is null on the first `lags` candles of a series and has a value from candle `lags` on
    (the earliest over a few random series: roll_spread is null by definition when the covariance is positive)."""
    first: dict[str, int] = {name: 10**9 for name in CONTRACT}
    for seed in range(6):
        candles = random_candles(np.random.default_rng(seed), 60, empty_share=0.0)
        out = add_features(candles.lazy()).collect()
        for feature in features.FEATURES:
            values = out[feature.name]
            assert values[: feature.lags].is_null().all(), f"{feature.name} has a value before its warm-up"
            present = values.is_not_null().arg_true()
            if len(present):
                first[feature.name] = min(first[feature.name], int(present[0]))
    assert first == {feature.name: feature.lags for feature in features.FEATURES}


def test_contract_doc_feature_table_is_the_registry():
    """docs/contract.md's feature table has one row per registered feature, in order, with its warm-up."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "contract.md").read_text(encoding="utf-8")
    section = doc.split("### Features", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|") for line in section.splitlines() if line.startswith("| `")]
    assert [row[1].strip().strip("`") for row in rows] == list(CONTRACT)
    assert [int(row[4]) for row in rows] == [feature.lags for feature in features.FEATURES]


def test_registry_state_is_the_kernels_carried_state():
    """Every state a feature names is a carried column of the kernel, and every carried column (but the row count)
    belongs to some feature: a continuation restores exactly what the registry says it needs."""
    from mdstream.kernel.features import STATE_COLUMNS

    named = {f"_st_{state}" for feature in features.FEATURES for state in feature.state}
    assert named == set(STATE_COLUMNS) - {"_st_n"}
