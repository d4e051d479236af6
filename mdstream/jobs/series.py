"""Ticks grouped for the backfill: one frame per (exchange, symbol) across input files, bounded to a date
range and cut at UTC midnight (pure Polars, no I/O)."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from ..contract import columns as c
from ..contract import schema
from ..contract.timeframes import US_PER_DAY, day_bounds
from ..inputs.tardis import TickRead
from ..kernel.candles import split_numbered

EPOCH = date(1970, 1, 1)


def series_of(reads: list[TickRead]) -> list[tuple[pl.DataFrame, list[TickRead], int]]:
    """(ticks of one series, the reads they came from, trades present in several of those reads on the same UTC
    day) per series.
    A Tardis file holds one series, so files of different symbols are never concatenated or hashed."""
    groups: dict[tuple[str, str], list[tuple[pl.DataFrame, TickRead]]] = {}
    for read in reads:
        # Split by the reader already, else here; ids the reader parsed ride along, so order and gap checks need
        # not parse them again.
        for part in read.parts or split_numbered(read.ticks, read.id_numbers, single=read.single_series):
            groups.setdefault((part[c.EXCHANGE][0], part[c.SYMBOL][0]), []).append((part, read))
    out = []
    for parts in groups.values():
        sources = [read for _, read in parts]
        if len(parts) == 1:
            out.append((parts[0][0], sources, 0))
            continue
        frames = [part for part, _ in parts]
        if len({frame[c.ID].dtype for frame in frames}) > 1:  # integer ids of one file, text of another
            frames = [frame.with_columns(pl.col(c.ID).cast(pl.String)) for frame in frames]
        ticks = pl.concat(frames, how="diagonal_relaxed")
        # The same trade in two files of one day counts once. An id seen again on another UTC day is another
        # trade: some venues reuse ids (after a reset, or per session), so days never drop each other's trades.
        day = (pl.col(c.TIMESTAMP).dt.epoch("us") // US_PER_DAY).alias("_day")
        with_id = (ticks.filter(pl.col(c.ID).is_not_null()).with_columns(day)
                   .unique([c.ID, "_day"], keep="first", maintain_order=True).drop("_day"))
        merged = pl.concat([with_id, ticks.filter(pl.col(c.ID).is_null())])
        out.append((merged, sources, ticks.height - merged.height))
    return out


def in_range(ticks: pl.DataFrame, from_date: date | None, to_date: date | None) -> pl.DataFrame:
    """Ticks inside the UTC days [from_date, to_date) (a filter pass only when some tick lies outside)."""
    lo = day_bounds(from_date)[0] if from_date else None
    hi = day_bounds(to_date)[0] if to_date else None
    if ticks.height == 0 or (lo is None and hi is None):
        return ticks
    ts = ticks[c.TIMESTAMP]
    first, last = schema.oldest(ts), schema.newest(ts)
    if first is not None and last is not None and (lo is None or first >= lo) and (hi is None or last < hi):
        return ticks
    keep = pl.lit(True)
    if lo is not None:
        keep &= pl.col(c.TIMESTAMP) >= lo
    if hi is not None:
        keep &= pl.col(c.TIMESTAMP) < hi
    return ticks.filter(keep)


def split_days(series: pl.DataFrame) -> list[tuple[date, pl.DataFrame]]:
    """Ticks of one series cut into UTC days, in order (a one-day file comes back whole, uncopied)."""
    if series.height == 0:
        return []
    ts = pl.col(c.TIMESTAMP)
    first, last = series.lazy().select(ts.min().alias("first"), ts.max().alias("last")).collect().row(0)
    if first.date() == last.date():  # min/max are cheap; a per-row day number only when the ticks span several days
        return [(first.date(), series)]
    day_no = series[c.TIMESTAMP].dt.epoch("us") // US_PER_DAY
    parts = series.with_columns(day_no.alias("_day")).partition_by("_day", as_dict=True, maintain_order=True)
    return sorted((EPOCH + timedelta(days=k[0]), part.drop("_day")) for k, part in parts.items())
