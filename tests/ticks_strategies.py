"""Hypothesis strategies for tick frames that stress window boundaries, ties and several series."""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl
from hypothesis import strategies as st

from mdstream.contract import columns as c
from mdstream.contract.schema import TICK_SCHEMA

BASE_US = int(datetime(2024, 3, 9, 23, 50, tzinfo=timezone.utc).timestamp() * 1_000_000)


@st.composite
def tick_frames(draw, max_rows: int = 120, symbols=("BTCUSDT", "ETHUSDT")) -> pl.DataFrame:
    """Ticks across a UTC midnight: timestamps on or next to 15s boundaries, ties, both sides, 1-2 symbols."""
    n = draw(st.integers(1, max_rows))
    rows = []
    next_id = {s: 1000 for s in symbols}
    for _ in range(n):
        symbol = draw(st.sampled_from(symbols))
        boundary = draw(st.integers(0, 80)) * 15_000_000  # up to 20 minutes: crosses midnight at 10 min
        jitter = draw(st.sampled_from([0, 0, 1, -1, 1000, 7_499_999, 14_999_999]))
        ts = BASE_US + max(boundary + jitter, 0)
        next_id[symbol] += draw(st.integers(1, 2))
        rows.append(
            {
                c.EXCHANGE: "binance-futures",
                c.SYMBOL: symbol,
                c.TIMESTAMP: ts,
                c.LOCAL_TIMESTAMP: ts + draw(st.integers(0, 5000)),
                c.ID: str(next_id[symbol]),
                c.SIDE: draw(st.sampled_from([c.SIDE_BUY, c.SIDE_SELL, c.SIDE_UNKNOWN])),
                c.PRICE: draw(st.sampled_from([99.5, 100.0, 100.25, 101.0, 98.75])),
                c.AMOUNT: draw(st.sampled_from([0.001, 0.5, 1.0, 2.25, 10.0])),
            }
        )
    df = pl.DataFrame(rows)
    return df.with_columns(
        pl.from_epoch(c.TIMESTAMP, time_unit="us").dt.replace_time_zone("UTC"),
        pl.from_epoch(c.LOCAL_TIMESTAMP, time_unit="us").dt.replace_time_zone("UTC"),
    ).select([pl.col(k).cast(v) for k, v in TICK_SCHEMA.items()])
