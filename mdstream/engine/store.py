"""Ticks a stream keeps within its revision horizon: each trade once (exact exchange, symbol, id), and the ticks
of every window a late trade may still change, so that window is recomputed from all of its trades."""

from __future__ import annotations

import polars as pl

from ..contract import columns as c
from ..contract.schema import TICK_SCHEMA
from ..kernel.candles import is_single_series, series_windows, sparse_many
from ..kernel.grid import SPARSE_COLUMNS
from ..kernel.plans import SMALL_PLAN

W = "_base_window_us"  # start of the tick's window of the shortest timeframe, computed once on arrival
SEQ = "_store_seq"  # arrival number of a retained tick: those from a batch on are that batch's or later ones'
_KEY = [c.EXCHANGE, c.SYMBOL, c.ID]
_SERIES = [c.EXCHANGE, c.SYMBOL]


class TickStore:
    """Retained ticks with their base window; bounded by `prune`."""

    def __init__(self, base_us: int):
        self.base_us = base_us
        self.ticks = pl.DataFrame(schema={**TICK_SCHEMA, W: pl.Int64(), SEQ: pl.Int64()})
        self._seq = 0

    def add(self, ticks: pl.DataFrame) -> tuple[pl.DataFrame, int]:
        """(ticks not seen before, duplicates dropped): a trade with an id counts once per (exchange, symbol, id)
        among the batch and the retained ticks, whatever order ids come in; a trade without id always counts."""
        has_id = pl.col(c.ID).is_not_null()
        width = self.base_us
        # One query per batch: a batch is small, and each separate Polars call costs more than its work.
        keyed = ticks.lazy().filter(has_id)
        ids = ticks.get_column(c.ID)
        # Distinct hashes prove distinct ids (nulls hash alike, counting once as in n_unique), ~6x cheaper than
        # hashing the strings into a set; a collision only costs the exact pass below.
        if ids.hash().n_unique() < ids.len() - ids.null_count() + (ids.null_count() > 0):
            # Some id repeats in the batch (in any series): keep each trade's first copy. Ids all distinct need
            # no per-series pass (a large replay slice is mostly that).
            keyed = keyed.unique(_KEY, keep="first", maintain_order=True)
        if self.ticks.height:
            keyed = keyed.join(self.ticks.lazy().select(_KEY), on=_KEY, how="anti", maintain_order="left")
        fresh = pl.concat([keyed, ticks.lazy().filter(~has_id)]).with_columns(
            (pl.col(c.TIMESTAMP).dt.epoch("us") // width * width).alias(W),
            (pl.int_range(pl.len(), dtype=pl.Int64) + self._seq).alias(SEQ),
        ).collect(engine="in-memory", optimizations=SMALL_PLAN)
        self._seq += fresh.height
        if fresh.height:
            both = pl.concat([self.ticks, fresh])
            self.ticks = both.rechunk() if both.n_chunks() > 16 else both
        return fresh, ticks.height - fresh.height

    def windows(self, fresh: pl.DataFrame, base: str, instruments: pl.DataFrame | None = None) -> pl.DataFrame:
        """Trade windows of `base` that `fresh` (every tick `add` returned from some batch on) falls in, recomputed
        from every retained tick of them, volumes by each series' instrument (contract/instruments.INSTRUMENT_SCHEMA;
        unlisted: linear, size 1)."""
        # `fresh` are the latest batches added, retained in arrival order at the end of the store: every tick
        # from the first of them on lies in a touched window. Only older ones are matched to the touched
        # windows, and only from the earliest touched window on (a slice of a replay: none).
        split = int(self.ticks.get_column(SEQ).search_sorted(fresh.select(pl.col(SEQ).min()).item()))
        older = self.ticks.slice(0, split).filter(pl.col(W) >= fresh.get_column(W).min())
        if older.height:
            older = older.join(fresh.select(*_SERIES, W).unique(), on=[*_SERIES, W], how="semi")
        latest = self.ticks.slice(split)
        mine = pl.concat([older, latest]) if older.height else latest
        if mine.height and is_single_series(mine):
            # One series (a replay's slice, a one-symbol feed): the backfill's path, in any row order, with no
            # sort of every tick by the trade order (a 1M-trade slice: ~80 -> ~20 ms), and the backfill's sums.
            return series_windows(mine, base, instruments)
        return sparse_many(mine, base, instruments).select(SPARSE_COLUMNS)

    def prune(self, floor_us: int) -> None:
        """Forget ticks whose base window lies wholly before `floor_us` (no trade can revise it any more)."""
        mark = floor_us // self.base_us * self.base_us
        oldest = self.ticks.get_column(W).min() if self.ticks.height else None
        if isinstance(oldest, int) and oldest < mark:
            self.ticks = self.ticks.filter(pl.col(W) >= mark)

    def __len__(self) -> int:
        return self.ticks.height
