"""Revision numbers of emitted windows a stream may still revise: the first emission is revision 0, every
re-emission the previous one + 1, late_trades counting the trades that arrived after the first."""

from __future__ import annotations

import polars as pl

from ..contract import columns as c
from ..contract import timeframes as tfm
from ..contract.schema import TS
from ..kernel.grid import window_width_us
from .core import REEMIT

_WINDOW = [c.EXCHANGE, c.SYMBOL, c.TIMEFRAME, c.TIMESTAMP_IN]
SCHEMA = {c.EXCHANGE: pl.String(), c.SYMBOL: pl.String(), c.TIMEFRAME: pl.String(), c.TIMESTAMP_IN: TS,
          c.REVISION: pl.Int64(), c.LATE_TRADES: pl.Int64()}


class Ledger:
    """The newest revision and late-trade count of every emitted window that can still be revised."""

    def __init__(self) -> None:
        self.rows = pl.DataFrame(schema=SCHEMA)

    def number(self, candles: pl.DataFrame, late: pl.DataFrame | None, timeframes: tuple[str, ...]) -> pl.DataFrame:
        """`candles` (core output) with revision and late_trades set and without the REEMIT flag. `late`: the
        ticks of this fold that fell in already emitted windows (exchange, symbol, timestamp)."""
        if candles.height == 0:
            return candles.drop(REEMIT)
        again = candles.filter(pl.col(REEMIT))
        if again.height:
            counts = self._late_counts(late, timeframes)
            done = again.select(_WINDOW).join(self.rows, on=_WINDOW, how="left")
            numbered = again.drop(c.REVISION, c.LATE_TRADES).join(done, on=_WINDOW, how="left").join(
                counts, on=_WINDOW, how="left").with_columns(
                (pl.col(c.REVISION).fill_null(0) + 1).alias(c.REVISION),
                (pl.col(c.LATE_TRADES).fill_null(0) + pl.col("_late").fill_null(0)).alias(c.LATE_TRADES),
            ).select(candles.columns)
            candles = pl.concat([candles.filter(~pl.col(REEMIT)), numbered])
        keys = candles.select(_WINDOW + [c.REVISION, c.LATE_TRADES])
        kept = self.rows.join(keys, on=_WINDOW, how="anti") if again.height else self.rows
        both = pl.concat([kept, keys])
        self.rows = both.rechunk() if both.n_chunks() > 16 else both
        return candles.drop(REEMIT)

    @staticmethod
    def _late_counts(late: pl.DataFrame | None, timeframes: tuple[str, ...]) -> pl.DataFrame:
        """(window key, _late): late trades per window of every timeframe."""
        if late is None or late.height == 0:
            return pl.DataFrame(schema={**{k: SCHEMA[k] for k in _WINDOW}, "_late": pl.UInt32()})
        ts = pl.col(c.TIMESTAMP).dt.epoch("us")
        parts = [late.select(c.EXCHANGE, c.SYMBOL, pl.lit(tf).alias(c.TIMEFRAME),
                             (ts // tfm.duration_us(tf) * tfm.duration_us(tf)).cast(TS).alias(c.TIMESTAMP_IN))
                 for tf in timeframes]
        return pl.concat(parts).group_by(_WINDOW).agg(pl.len().alias("_late"))

    def prune(self, floor_us: int) -> None:
        """Forget windows that end at or before `floor_us`: no trade can revise them any more."""
        if self.rows.height:
            end = pl.col(c.TIMESTAMP_IN).dt.epoch("us") + window_width_us()
            self.rows = self.rows.filter(end > floor_us)

    def __len__(self) -> int:
        return self.rows.height
