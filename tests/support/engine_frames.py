"""Helpers of the engine tests: tick frames by hand, the batch reference of the same ticks, comparisons."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl

from mdstream.contract import columns as c
from mdstream.contract import timeframes as tfm
from mdstream.contract.schema import CANDLE_SCHEMA, TICK_SCHEMA, conform
from mdstream.kernel import gaps as gp
from mdstream.kernel.candles import candles_from_ticks
from mdstream.kernel.features import STATE_COLUMNS, add_features

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
KEY = [*c.SERIES_KEY, c.TIMESTAMP_IN]
VALUES = [c.OPEN, c.HIGH, c.LOW, c.CLOSE, c.VOLUME, c.QUOTE_VOLUME, c.BUY_VOLUME, c.SELL_VOLUME, c.TRADES, c.VWAP,
          c.FIRST_TRADE_AT, c.LAST_TRADE_AT]
COMPARED = [*VALUES, c.GAP, *c.FEATURE_COLUMNS]


def t(seconds: float) -> datetime:
    """T0 + seconds."""
    return T0 + timedelta(seconds=seconds)


def ticks_of(rows, *, exchange: str = "binance", symbol: str = "BTCUSDT") -> pl.DataFrame:
    """Ticks from (time, id, price) or (time, id, price, symbol) rows; receive time = event time, amount 1. A time
    may be an int of epoch microseconds (one no Python datetime can hold)."""
    out = []
    for row in rows:
        ts, tid, price = row[:3]
        ts = pl.Series([ts], dtype=pl.Int64).cast(pl.Datetime("us", "UTC")) if isinstance(ts, int) else ts
        out.append({c.EXCHANGE: exchange, c.SYMBOL: row[3] if len(row) > 3 else symbol, c.TIMESTAMP: ts,
                    c.LOCAL_TIMESTAMP: ts, c.ID: None if tid is None else str(tid), c.SIDE: c.SIDE_BUY,
                    c.PRICE: price, c.AMOUNT: 1.0})
    if not out:
        return pl.DataFrame(schema=TICK_SCHEMA)
    frames = [pl.DataFrame({k: (v if isinstance(v, pl.Series) else [v]) for k, v in row.items()}) for row in out]
    frame = pl.concat([f.with_columns(pl.col(c.TIMESTAMP, c.LOCAL_TIMESTAMP).cast(pl.Datetime("us", "UTC"))) for f in frames],
                      how="vertical_relaxed")
    return conform(frame, TICK_SCHEMA)


def reference(ticks: pl.DataFrame, gaps: list[tuple[datetime, datetime]] = (), *, end: datetime | None = None,
              timeframes=tfm.ALL_TIMEFRAMES) -> pl.DataFrame:
    """The candles of `ticks` as one batch (kernel.candles_from_ticks, not the engine): every series' grid reaches
    the window holding `end` (default: the last trade), which is feed (the input ends there); windows
    overlapping one of `gaps` (all series) are feed too."""
    end = end or ticks.select(pl.col(c.TIMESTAMP).max()).item()
    series = ticks.select(c.EXCHANGE, c.SYMBOL).unique()
    known = [(s, e, "known") for s, e in gaps] + [(end, end, "input ends")]
    frame = pl.DataFrame(known, schema={gp.GAP_START: gp.GAP_SCHEMA[gp.GAP_START], gp.GAP_END: gp.GAP_SCHEMA[gp.GAP_END],
                                        gp.GAP_REASON: pl.String()}, orient="row")
    feed = series.join(frame, how="cross").select(list(gp.GAP_SCHEMA))
    candles = candles_from_ticks(ticks, timeframes, now=NOW, end=end + timedelta(microseconds=1), feed_gaps=feed.lazy())
    featured = add_features(candles).collect(engine="in-memory").drop(STATE_COLUMNS)
    return conform(featured, CANDLE_SCHEMA)


def latest(rows: pl.DataFrame) -> pl.DataFrame:
    """The highest revision of every window (what a reader sees)."""
    return rows.sort(c.REVISION).unique(KEY, keep="last")


def assert_same(expected: pl.DataFrame, actual: pl.DataFrame, columns=COMPARED, rel: float = 1e-9) -> None:
    """The same windows, and in each the same values (floats to `rel` relative, nulls in the same places)."""
    missing = expected.join(actual, on=KEY, how="anti")
    extra = actual.join(expected, on=KEY, how="anti")
    assert missing.height == 0, ("windows missing", missing.select(KEY).head(8).rows())
    assert extra.height == 0, ("windows the reference does not have", extra.select(KEY).head(8).rows())
    joined = expected.join(actual, on=KEY, suffix="_s")
    for col in columns:
        a, b = pl.col(col), pl.col(col + "_s")
        differ = a.is_null() != b.is_null()
        if joined.schema[col] == pl.Float64:
            differ = differ | ((a - b).abs() > rel * pl.max_horizontal(a.abs(), b.abs()) + 1e-12).fill_null(False)
        else:
            differ = differ | (a != b).fill_null(False)
        bad = joined.filter(differ)
        assert bad.height == 0, (col, bad.select(*KEY[1:], col, col + "_s").head(8).rows())
