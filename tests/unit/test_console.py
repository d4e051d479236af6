"""Console output: candle lines, status, summary, quiet mode and JSON lines, captured in a StringIO."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from mdstream.contract import columns as c
from mdstream.contract import schema
from mdstream.contract.errors import ConfigError
from mdstream.observe.console import Console, number

T0 = datetime(2024, 8, 9, 0, 1, tzinfo=timezone.utc)


def candle_frame() -> pl.DataFrame:
    rows = {
        c.EXCHANGE: ["binance", "binance", "binance"],
        c.SYMBOL: ["ETHUSDT", "BTCUSDT", "BTCUSDT"],
        c.TIMEFRAME: ["1m", "1m", "15s"],
        c.TIMESTAMP_IN: [T0, T0, T0 - timedelta(seconds=15)],
        c.OPEN: [2500.0, 60000.0, 60010.0],
        c.HIGH: [2510.0, 60100.5, 60010.0],
        c.LOW: [2490.0, 59900.0, 60010.0],
        c.CLOSE: [2475.0, 60600.0, 60010.0],
        c.VOLUME: [12.5, 3.25, 0.0],
        c.TRADES: [40, 17, 0],
        c.LATENCY_MS: [250.0, 180.0, 90.0],
        c.GAP: [None, c.GAP_FEED, c.GAP_QUIET],
        c.REVISION: [0, 1, 0],
    }
    return schema.conform(pl.DataFrame(rows), schema.CANDLE_SCHEMA)


def test_candle_lines_text():
    out = io.StringIO()
    Console(quiet=False, log_format="text", file=out).candles(candle_frame())
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    # ordered by window start then symbol: the 15s window (00:00:45) comes first
    assert lines[0].startswith("2024-08-09 00:00:45 BTCUSDT") and "15s" in lines[0] and "quiet" in lines[0]
    btc = lines[1]
    assert btc.startswith("2024-08-09 00:01:00 BTCUSDT")
    for part in ("O 60000", "H 60100.5", "L 59900", "C 60600", "V 3.25", "n 17", "+1.000%", "180ms", "GAP:feed", "rev 1"):
        assert part in btc, part
    eth = lines[2]
    assert "ETHUSDT" in eth and "-1.000%" in eth and "GAP" not in eth and "rev" not in eth


def test_quiet_silences_candles_but_not_status():
    out = io.StringIO()
    console = Console(quiet=True, log_format="text", file=out)
    console.candles(candle_frame())
    assert out.getvalue() == ""
    console.status({"ticks_per_s": 1234.56, "batches": 40, "rows_written": 12000, "queue_depth": 3, "sink": "duckdb ./mdstream.duckdb"})
    line = out.getvalue().strip()
    assert line == "status ticks/s 1,234.6 | batches 40 | rows 12,000 | queue 3 | sink duckdb ./mdstream.duckdb"


def test_status_keeps_unknown_keys():
    out = io.StringIO()
    Console(file=out).status({"batches": 2, "lag_s": 0.5})
    assert out.getvalue().strip().endswith("batches 2 | lag_s=0.5")


def test_json_lines():
    out = io.StringIO()
    console = Console(quiet=False, log_format="json", file=out)
    console.candles(candle_frame())
    console.status({"ticks_per_s": 10.0, "batches": 1, "queue_depth": 0, "sink": "parquet"})
    console.summary({"ticks": 100, "rows_written": 18})
    console.message("reconnecting", level="warning", attempt=2)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["event"] for r in records] == ["candle"] * 3 + ["status", "summary", "log"]
    btc = records[1]
    assert btc[c.SYMBOL] == "BTCUSDT" and btc[c.TIMEFRAME] == "1m" and btc[c.GAP] == "feed" and btc[c.REVISION] == 1
    assert btc[c.TIMESTAMP_IN] == "2024-08-09T00:01:00Z"
    assert btc["change_pct"] == pytest.approx(1.0) and btc[c.CLOSE] == 60600.0
    assert records[3]["batches"] == 1 and records[4]["rows_written"] == 18
    assert records[5] == {"event": "log", "level": "warning", "message": "reconnecting", "attempt": 2}


def test_json_quiet_silences_candles():
    out = io.StringIO()
    console = Console(quiet=True, log_format="json", file=out)
    console.candles(candle_frame())
    console.status({"batches": 1})
    assert [json.loads(line)["event"] for line in out.getvalue().splitlines()] == ["status"]


def test_summary_table_text():
    out = io.StringIO()
    Console(file=out).summary({"ticks": 9999, "candles": 126, "duration_s": 12.34})
    text = out.getvalue()
    assert "mdstream summary" in text and "9,999" in text and "126" in text and "12.3" in text


def test_empty_frame_prints_nothing():
    out = io.StringIO()
    Console(file=out).candles(schema.empty(schema.CANDLE_SCHEMA))
    assert out.getvalue() == ""


def test_bad_log_format():
    with pytest.raises(ConfigError):
        Console(log_format="xml")


@pytest.mark.parametrize("value,text", [(9700.5, "9700.5"), (0.00001234, "0.00001234"), (60000.0, "60000"), (None, "-"), (-0.0, "0")])
def test_number(value, text):
    assert number(value) == text
