"""Plausibility of trade prices and sizes against the recent trades of their own series, vectorised per chunk."""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from statistics import median

import polars as pl

from ..contract import columns as c
from ..inputs.parse import no_quarantine, tick_quarantine

FAR_PRICE = "price far from the series' recent prices"
HUGE_SIZE = "quantity far above the series' recent sizes"


class PriceBand:
    """Quarantines a trade whose price is more than `factor` times above or below its series' reference price, or
    whose quantity exceeds `size_factor` times the reference quantity.

    The reference of a symbol is the median of the per-chunk medians of its last `window` chunks of accepted
    trades, once those hold `min_history` trades and the newest is at most `stale_seconds` older than the chunk
    (a market that truly moved `factor`-fold is believed again after that long); before that, the median of
    the chunk's own trades of the symbol when it holds `min_history`, else no check. Medians ignore a minority
    of bad prints, and only accepted trades feed the reference, so a burst of bad prices cannot drag it along.
    """

    def __init__(self, *, factor: float = 10.0, size_factor: float = 1e9, window: int = 16, min_history: int = 5,
                 stale_seconds: float = 600.0):
        self.factor, self.size_factor, self.min_history = factor, size_factor, min_history
        self.window, self.stale = window, timedelta(seconds=stale_seconds)
        # per symbol: (median price, median quantity, trades, newest time) of its last `window` chunks
        self._chunks: dict[str, deque[tuple[float, float, int, datetime]]] = {}

    def _reference(self, newest: dict[str, datetime]) -> tuple[dict[str, float], dict[str, float]]:
        """(reference price, reference quantity) of the symbols whose history is usable for chunks this new."""
        prices, sizes = {}, {}
        for symbol, when in newest.items():
            history = self._chunks.get(symbol)
            if not history or sum(h[2] for h in history) < self.min_history or history[-1][3] < when - self.stale:
                continue
            prices[symbol] = median(h[0] for h in history)
            sizes[symbol] = median(h[1] for h in history)
        return prices, sizes

    def check(self, ticks: pl.DataFrame, *, source: str, now: datetime,
              stats: list[tuple[str, float, float, int, datetime]] | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(plausible ticks, quarantine rows of the others naming why); remembers the plausible ones. `stats`:
        (symbol, median price, median quantity, trades, newest time) of `ticks`, when the caller has them."""
        if ticks.height == 0:
            return ticks, no_quarantine()
        if stats is None:
            stats = _stats(ticks.lazy())
        ref_p, ref_q = self._reference({row[0]: row[4] for row in stats})
        for symbol, p_med, q_med, n, _ in stats:
            if symbol not in ref_p and n >= self.min_history:
                # no usable history: the symbol's own trades of this chunk are its reference
                ref_p[symbol], ref_q[symbol] = p_med, q_med
        price, amount = pl.col(c.PRICE), pl.col(c.AMOUNT)
        rp, rq = _per_symbol(ref_p, stats), _per_symbol(ref_q, stats)
        far = ((price > rp * self.factor) | (price * self.factor < rp)).fill_null(False)
        huge = (amount > rq * self.size_factor).fill_null(False)
        flags = ticks.lazy().select(far.alias("_far"), huge.alias("_huge")).collect(engine="in-memory")
        bad = flags.get_column("_far") | flags.get_column("_huge")
        if not bad.any():
            self._remember(stats)
            return ticks, no_quarantine()
        kept = ticks.filter(~bad)
        self._remember(_stats(kept.lazy()))  # only accepted trades feed the reference
        flagged = ticks.with_columns(flags).filter(bad)
        field = pl.when(pl.col("_far")).then(pl.lit(c.PRICE)).otherwise(pl.lit(c.AMOUNT))
        reason = pl.when(pl.col("_far")).then(pl.lit(FAR_PRICE)).otherwise(pl.lit(HUGE_SIZE))
        return kept, tick_quarantine(flagged, field, reason, source, now)

    def _remember(self, stats: list[tuple[str, float, float, int, datetime]]) -> None:
        """Append one chunk's per-symbol medians to each symbol's history."""
        for symbol, p, q, n, ts in stats:
            if n:
                self._chunks.setdefault(symbol, deque(maxlen=self.window)).append((p, q, n, ts))


def _per_symbol(values: dict[str, float], stats: list[tuple]) -> pl.Expr:
    """Each row's value of `values` by its symbol (null for a symbol without one); a literal when the chunk holds
    one symbol, which costs no per-row lookup."""
    if len(stats) == 1:
        return pl.lit(values.get(stats[0][0]), dtype=pl.Float64)
    return pl.col(c.SYMBOL).replace_strict(values, default=None, return_dtype=pl.Float64)


def stats_exprs() -> list[pl.Expr]:
    """Per-symbol aggregates the band needs: median price, median quantity, trades, newest event time."""
    return [pl.col(c.PRICE).median().alias("_p_med"), pl.col(c.AMOUNT).median().alias("_q_med"),
            pl.len().alias("_n"), pl.col(c.TIMESTAMP).max().alias("_ts")]


def _stats(ticks: pl.LazyFrame) -> list[tuple]:
    """(symbol, median price, median quantity, trades, newest time) per symbol."""
    return ticks.group_by(c.SYMBOL).agg(stats_exprs()).collect(engine="in-memory").rows()
