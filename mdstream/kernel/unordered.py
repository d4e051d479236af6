"""Trade windows of one series whose rows are not in trade order, computed without reordering them (pure Polars).

Only a window's open and close depend on the order of its trades: they are its first and last trade by the order
rule (order.ORDER_KEYS), and both lie among its trades at its earliest and latest exchange time. Everything else
(high, low, sums, counts, first and last trade time) is the same in any order. So the rows stay where they are:
runs of rows in one window (a window's rows are one run unless a trade arrives after a later window's) are
aggregated where they lie, the runs of a window are combined, and each window's open and close are picked from
its few candidate trades by a sort of those alone. Moving every row into order (a sort, or the gather and scatter
of out-of-order tie groups) costs several times more on a day of millions of trades with receive-time jitter
or late exchange times. Sums add the same trades in file order instead of trade order (the last bit may differ).
"""

from __future__ import annotations

import polars as pl

from ..contract import columns as c
from .order import ORDER_KEYS, id_length

BUCKET = "_bucket"  # the window start (us) of a row, as kernel/candles.py names it
_RUN = "_run"  # number of the run of consecutive rows in one window: 0, 1, ...


def run_aggs(sums: list[pl.Expr]) -> list[pl.Expr]:
    """Per run: its window, high = max price, low = min price, the `sums` (amount, price * amount, buy, sell, ...),
    trades = count, first/last trade time = min/max exchange time."""
    return [
        pl.col(BUCKET).first(),
        pl.col(c.PRICE).max().alias(c.HIGH),
        pl.col(c.PRICE).min().alias(c.LOW),
        *sums,
        pl.len().cast(pl.Int64).alias(c.TRADES),
        pl.col(c.TIMESTAMP).min().alias(c.FIRST_TRADE_AT),
        pl.col(c.TIMESTAMP).max().alias(c.LAST_TRADE_AT),
    ]


def unordered_windows(series: pl.DataFrame, width_us: int, inputs: list[pl.Expr], sums: list[pl.Expr]) -> pl.LazyFrame:
    """Window rows (_bucket, open, high, low, close, the columns `sums` name, trades, first/last trade time) of ONE
    series (exchange times without nulls) in any row order, as a group_by of the series in trade order gives them
    (module docstring). `inputs`: the per-trade columns the `sums` read (buy and sell amounts, ...)."""
    bucket = pl.col(c.TIMESTAMP).dt.epoch("us") // width_us * width_us
    rows = (
        series.lazy().select(c.TIMESTAMP, c.LOCAL_TIMESTAMP, c.ID, c.SIDE, c.PRICE, c.AMOUNT)
        # run numbers rise by construction: flagged, the group_by takes the runs as slices
        .with_columns(bucket.alias(BUCKET), bucket.rle_id().set_sorted().alias(_RUN))
        .collect(engine="in-memory")
    )
    parts = rows.lazy().with_columns(inputs).group_by(_RUN, maintain_order=True).agg(run_aggs(sums)).collect()
    # A run's trades at its earliest or latest exchange time: the window's first and last trade are among them.
    first_at = pl.lit(parts.get_column(c.FIRST_TRADE_AT)).gather(pl.col(_RUN))
    last_at = pl.lit(parts.get_column(c.LAST_TRADE_AT)).gather(pl.col(_RUN))
    edges = (
        rows.lazy().filter((pl.col(c.TIMESTAMP) == first_at) | (pl.col(c.TIMESTAMP) == last_at))
        .with_columns(id_length())
        # stable: trades equal in every key keep their file order, as in a stable sort of all rows
        .sort([BUCKET, *ORDER_KEYS], nulls_last=False, maintain_order=True)
        .group_by(BUCKET, maintain_order=True)
        .agg(pl.col(c.PRICE).first().alias(c.OPEN), pl.col(c.PRICE).last().alias(c.CLOSE))
    )
    windows = (
        parts.lazy().sort(BUCKET, maintain_order=True)
        .group_by(BUCKET, maintain_order=True)
        .agg(
            pl.col(c.HIGH).max(), pl.col(c.LOW).min(), *(pl.col(e.meta.output_name()).sum() for e in sums),
            pl.col(c.TRADES).sum(), pl.col(c.FIRST_TRADE_AT).min(), pl.col(c.LAST_TRADE_AT).max(),
        )
    )
    return windows.join(edges, on=BUCKET, how="left", maintain_order="left")
