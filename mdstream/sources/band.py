"""Plausibility of trade prices and sizes against the recent trades of their own series, vectorised per chunk."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from ..contract import columns as c
from ..contract import schema
from ..inputs.parse import no_quarantine, tick_quarantine

FAR_PRICE = "price far from the series' recent prices"
HUGE_SIZE = "quantity far above the series' recent sizes"


class PriceBand:
    """Quarantines a trade whose price is more than `factor` times above or below the median of its series'
    recent accepted prices, or whose quantity exceeds `size_factor` times their median quantity.

    The reference is the median of the last `window` accepted trades of the symbol, once it holds
    `min_history` of them and its newest is at most `stale_seconds` older than the chunk (a market that truly
    moved `factor`-fold is believed again after that long); before that, the median of the chunk's own trades
    of the symbol when it holds `min_history`, else no check. A median ignores a minority of bad prints, and
    only accepted trades enter the reference, so a burst of bad prices cannot drag it along.
    """

    def __init__(self, *, factor: float = 10.0, size_factor: float = 1e9, window: int = 32, min_history: int = 5,
                 stale_seconds: float = 600.0):
        self.factor, self.size_factor, self.window, self.min_history = factor, size_factor, window, min_history
        self._stale_us = int(stale_seconds * 1_000_000)
        self._recent = pl.DataFrame(schema={c.SYMBOL: pl.String, c.PRICE: pl.Float64, c.AMOUNT: pl.Float64,
                                            c.TIMESTAMP: schema.TS})
        self._ref = pl.DataFrame(schema={c.SYMBOL: pl.String, "_ref_p": pl.Float64, "_ref_q": pl.Float64,
                                         "_n": pl.UInt32, "_last": schema.TS})

    def check(self, ticks: pl.DataFrame, *, source: str, now: datetime) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(plausible ticks, quarantine rows of the others naming why); remembers the plausible ones."""
        if ticks.height == 0:
            return ticks, no_quarantine()
        over = c.SYMBOL
        stale = pl.col(c.TIMESTAMP).max().over(over) - pl.duration(microseconds=self._stale_us)
        usable = (pl.col("_n") >= self.min_history) & (pl.col("_last") >= stale)
        own = pl.len().over(over) >= self.min_history
        ref_p = pl.when(usable).then(pl.col("_ref_p")).when(own).then(pl.col(c.PRICE).median().over(over))
        ref_q = pl.when(usable).then(pl.col("_ref_q")).when(own).then(pl.col(c.AMOUNT).median().over(over))
        price, amount = pl.col(c.PRICE), pl.col(c.AMOUNT)
        far = ((price > pl.col("_rp") * self.factor) | (price * self.factor < pl.col("_rp"))).fill_null(False)
        huge = (amount > pl.col("_rq") * self.size_factor).fill_null(False)
        frame = (
            ticks.lazy().join(self._ref.lazy(), on=c.SYMBOL, how="left", maintain_order="left")
            .with_columns(ref_p.alias("_rp"), ref_q.alias("_rq"))
            .with_columns(far.alias("_far"), huge.alias("_huge"))
            .collect(engine="in-memory")
        )
        bad = frame.get_column("_far") | frame.get_column("_huge")
        if bad.any():
            reason = pl.when(pl.col("_far")).then(pl.lit(FAR_PRICE)).otherwise(pl.lit(HUGE_SIZE))
            field = pl.when(pl.col("_far")).then(pl.lit(c.PRICE)).otherwise(pl.lit(c.AMOUNT))
            quarantine = tick_quarantine(frame.filter(bad), field, reason, source, now)
            kept = ticks.filter(~bad)
        else:
            quarantine, kept = no_quarantine(), ticks
        self._remember(kept)
        return kept, quarantine

    def _remember(self, kept: pl.DataFrame) -> None:
        """Append the accepted trades and recompute the reference of their symbols from the last `window`."""
        if kept.height == 0:
            return
        symbols = kept.get_column(c.SYMBOL).unique()
        touched = pl.col(c.SYMBOL).is_in(symbols.implode())
        both = pl.concat([self._recent.filter(touched), kept.select(self._recent.columns)])
        newest = pl.int_range(pl.len()).over(c.SYMBOL) >= pl.len().over(c.SYMBOL).cast(pl.Int64) - self.window
        fresh = both.filter(newest)
        self._recent = pl.concat([self._recent.filter(~touched), fresh])
        ref = fresh.group_by(c.SYMBOL).agg(
            pl.col(c.PRICE).median().alias("_ref_p"), pl.col(c.AMOUNT).median().alias("_ref_q"),
            pl.len().cast(pl.UInt32).alias("_n"), pl.col(c.TIMESTAMP).max().alias("_last"),
        )
        self._ref = pl.concat([self._ref.filter(~touched), ref])
