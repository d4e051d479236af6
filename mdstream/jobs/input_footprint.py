"""Which explicit input files (named any way) can be backfilled one after another: each file's footprint (per
series, its first and last UTC day, read from three columns) and the files grouped so that no two groups share a
series' days and every series moves forward from group to group. Each group is then read and written on its own,
so a long input is written day by day and an interrupt keeps what is done."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ..contract import columns as c
from ..contract.timeframes import US_PER_DAY
from ..kernel.validate import MAX_US, MIN_US

Series = tuple[str, str]
Footprint = dict[Series, tuple[int, int]]  # (exchange, SYMBOL) -> (first, last) UTC day as days since 1970


def footprint(path: Path) -> Footprint | None:
    """Per series the first and last UTC day of a Tardis-format file's trades (from exchange, symbol, timestamp
    only); None when the file does not read cleanly that way (it is then read together with the others)."""
    try:
        frame = pl.read_csv(path, columns=[c.EXCHANGE, c.SYMBOL, c.TIMESTAMP],
                            schema_overrides={c.EXCHANGE: pl.String, c.SYMBOL: pl.String, c.TIMESTAMP: pl.Int64})
    except Exception:  # noqa: BLE001 - an unusual file goes to the tolerant reader with the others
        return None
    stamps = frame.get_column(c.TIMESTAMP)
    if frame.height == 0 or stamps.null_count() or stamps.min() < MIN_US or stamps.max() >= MAX_US:  # type: ignore[operator]
        return None
    days = (frame.group_by(c.EXCHANGE, pl.col(c.SYMBOL).str.to_uppercase())
            .agg((pl.col(c.TIMESTAMP).min() // US_PER_DAY).alias("first"),
                 (pl.col(c.TIMESTAMP).max() // US_PER_DAY).alias("last")))
    return {(exchange, symbol): (first, last) for exchange, symbol, first, last in days.iter_rows()}


def _clash(a: Footprint, b: Footprint) -> bool:
    """True when the two footprints share a series whose day ranges overlap (trades of one day in both)."""
    return any(a[key][0] <= b[key][1] and b[key][0] <= a[key][1] for key in a.keys() & b.keys())


def _merge(prints: list[Footprint]) -> Footprint:
    """One footprint covering all of `prints`."""
    out: Footprint = {}
    for fp in prints:
        for key, (first, last) in fp.items():
            lo, hi = out.get(key, (first, last))
            out[key] = (min(lo, first), max(hi, last))
    return out


def groups(prints: list[Footprint]) -> list[tuple[list[int], bool]] | None:
    """Indices of the files of each group in the order to backfill them, with whether every series of the group
    continues in a later group (its days then run to midnight); None when the files cannot be taken apart
    (a series would go back in time, or a group ends some series and not others)."""
    parent = list(range(len(prints)))

    def root(i: int) -> int:
        """Union-find representative of file i."""
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(prints)):
        for j in range(i + 1, len(prints)):
            if _clash(prints[i], prints[j]):
                parent[root(j)] = root(i)
    members: dict[int, list[int]] = {}
    for i in range(len(prints)):
        members.setdefault(root(i), []).append(i)
    merged = [(files, _merge([prints[i] for i in files])) for files in members.values()]
    # merging can make two groups overlap again (a's days now span b's): join until none do
    changed = True
    while changed:
        changed = False
        for x in range(len(merged)):
            for y in range(x + 1, len(merged)):
                if _clash(merged[x][1], merged[y][1]):
                    files = merged[x][0] + merged[y][0]
                    merged[x] = (files, _merge([merged[x][1], merged[y][1]]))
                    del merged[y]
                    changed = True
                    break
            if changed:
                break
    merged.sort(key=lambda g: (min(first for first, _ in g[1].values()), min(g[0])))
    last_seen: dict[Series, int] = {}
    for _, fp in merged:
        for key, (first, last) in fp.items():
            if key in last_seen and first <= last_seen[key]:
                return None  # this order would take a series back in time
            last_seen[key] = last
    out = []
    for n, (files, fp) in enumerate(merged):
        later = set().union(*(g[1].keys() for g in merged[n + 1:])) if n + 1 < len(merged) else set()
        continues = [key in later for key in fp]
        if any(continues) and not all(continues):
            return None
        out.append((sorted(files), all(continues)))
    return out
