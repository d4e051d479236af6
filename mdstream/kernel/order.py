"""The trade order rule: trades are ordered by exchange time, then receive time, then the trade id compared as a
number when it is one (pure Polars, no I/O)."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from ..contract import columns as c

# Trades inside a window are ordered by these, ascending: exchange time, then receive time, then the trade id
# compared as a number when it is one (length first makes "9" < "10"; ids read as Int64 order the same way).
_ID_LEN = "_id_len"
ORDER_KEYS = (c.TIMESTAMP, c.LOCAL_TIMESTAMP, _ID_LEN, c.ID)
_KEYS = (c.TIMESTAMP, c.LOCAL_TIMESTAMP, c.ID)  # the columns the order rule reads
_SERIES = (c.EXCHANGE, c.SYMBOL)  # one value in the ticks of one series
# Optional helper column: the trade id as Int64, when a reader already parsed it (saves re-parsing 1e6s of ids).
ID_NUMBER = "_id_number"

__all__ = ["ID_NUMBER", "ORDER_KEYS", "id_length", "in_trade_order", "order_ticks"]


def id_length() -> pl.Expr:
    """Length in characters of the trade id, whether it is held as text or as an integer."""
    return pl.col(c.ID).cast(pl.String).str.len_bytes().alias(_ID_LEN)


def order_ticks(series: pl.DataFrame, carry: Sequence[str] | None = None) -> pl.DataFrame:
    """Ticks of ONE series sorted by the trade order rule (timestamp, local_timestamp, id as a number), exactly
    as a stable 4-key sort would, without one: rows are put in exchange-time order by one integer key (skipped
    when they already are, as in a Tardis day file), then only the groups of tied exchange times whose
    tie-breakers are out of order (receive-time jitter) are sorted, in place. O(n) checks plus O(k log k).
    `carry`: the columns returned (default: all); only they are moved, the order keys are read in place."""
    keep = list(carry) if carry is not None else series.columns
    if series.height == 0:
        return series.select(keep)
    if series[c.TIMESTAMP].null_count():
        return _full_sort(series).select(keep)
    if not series[c.TIMESTAMP].is_sorted():
        # Only the columns asked for move; exchange and symbol, one value in a series, stay as they are (any
        # order of one value is the same column): moving 3M text values costs more than the sort.
        moved = [name for name in dict.fromkeys([*keep, *_KEYS]) if name not in _SERIES]
        constant = [series[name] for name in _SERIES if name in keep]
        # One integer key, stable: ~10x cheaper than four keys with strings; ties keep their file order. Sorted
        # by an expression, so the exchange time is not flagged sorted: Polars then aggregates the windows down
        # a path 3x slower whose sums vary in the last bit from run to run.
        series = series[moved].sort(pl.col(c.TIMESTAMP).dt.epoch("us"), maintain_order=True).with_columns(constant)[
            list(dict.fromkeys([*keep, *_KEYS]))]
    elif _rising_ids(series):
        # picked by name, not `select`: that would first align the chunks of every column (a copy)
        return series if carry is None else series[keep]
    breaks = _tie_breaks(series)
    if breaks.len() == 0:
        return series if carry is None else series[keep]
    return _order_tie_groups(series, breaks, keep)


def in_trade_order(series: pl.DataFrame) -> bool:
    """True when the rows are known to follow the order rule: exchange times present and sorted, and ids rising
    as a Tardis file's do, or receive times rising with no tie of both out of order. Receive times that fall
    back (network jitter) answer False without looking for the ties they break: such a series is not moved."""
    ts, lts = series.get_column(c.TIMESTAMP), series.get_column(c.LOCAL_TIMESTAMP)
    if ts.null_count() or not ts.is_sorted():
        return False
    if _rising_ids(series):
        return True
    return not lts.null_count() and lts.is_sorted() and _tie_breaks(series).len() == 0


def _full_sort(series: pl.DataFrame) -> pl.DataFrame:
    """Stable sort by every order key (the reference the fast path must equal)."""
    return series.with_columns(id_length()).sort(list(ORDER_KEYS), nulls_last=False, maintain_order=True).drop(_ID_LEN)


def _rising_ids(series: pl.DataFrame) -> bool:
    """True when receive times rise (none missing) and ids rise strictly as non-negative numbers with their text
    never getting shorter (a Tardis file): with sorted exchange times that is the order rule, ties included, as
    the rule compares ids by (length, text) and equal-length digit strings order like their numbers."""
    if ID_NUMBER not in series.columns or series[ID_NUMBER].null_count() or series[c.LOCAL_TIMESTAMP].null_count():
        return False
    numbers = series[ID_NUMBER]
    rising = bool(
        series[c.LOCAL_TIMESTAMP].is_sorted() and numbers.is_sorted() and numbers.min() >= 0  # type: ignore[operator]
        # each id above the one before it: a boolean per row, not a difference column of 8 bytes a row
        and (numbers.len() < 2 or (numbers.slice(1) > numbers.slice(0, numbers.len() - 1)).all())
    )
    # Ids held as integers have no text of their own: a rising non-negative integer never prints shorter, so the
    # text-length check (a cast of every id to text, ~20 ns a row) is needed only for ids read as text ("007").
    return rising and (series[c.ID].dtype.is_integer() or series[c.ID].cast(pl.String).str.len_bytes().is_sorted())


def _tie_breaks(series: pl.DataFrame) -> pl.Series:
    """Row positions i (UInt32) whose row must come before row i-1 although both share an exchange time, or
    whose order cannot be told (a null tie-breaker); rows must be sorted by exchange time."""
    ts = series[c.TIMESTAMP].dt.epoch("us") if series[c.TIMESTAMP].dtype != pl.Int64 else series[c.TIMESTAMP]
    tied = (ts.diff() == 0).arg_true()
    if tied.len() == 0:
        return tied
    # Only rows sharing a timestamp with their predecessor need the tie-breakers compared.
    lts = series[c.LOCAL_TIMESTAMP]
    lts = lts.dt.epoch("us") if lts.dtype != pl.Int64 else lts
    step = lts.gather(tied) - lts.gather(tied - 1)
    # Ids are compared only where the receive time ties too: string work on a few rows, not on every tie.
    same = tied.filter((step == 0).fill_null(False))
    bad = tied.filter((step < 0).fill_null(True))
    if same.len() == 0:
        return bad
    ids = series[c.ID]
    cur, prev = ids.gather(same), ids.gather(same - 1)
    if ids.dtype.is_integer() and all(isinstance(m, int) and m >= 0 for m in (cur.min(), prev.min())):
        # non-negative integers order by (text length, text) as by value: no cast of every tied id to text
        ok = cur >= prev
    else:
        iln, piln = cur.cast(pl.String).str.len_bytes(), prev.cast(pl.String).str.len_bytes()
        ok = (iln > piln) | ((iln == piln) & (cur >= prev))
    return pl.concat([bad, same.filter(~ok.fill_null(False))])


def _order_tie_groups(series: pl.DataFrame, breaks: pl.Series, keep: list[str]) -> pl.DataFrame:
    """The `keep` columns of `series` (in exchange-time order) with the rows of each tied group that holds a
    break sorted by the tie-breakers; every other row stays where it is. A stable sort of the groups' rows by all
    keys keeps the groups apart (their times differ) and in place, so the result equals the full stable sort."""
    ts = series[c.TIMESTAMP]
    # Exchange times are sorted: each group is the run of rows holding its time, found by two binary searches.
    times = ts.gather(breaks).unique().sort()
    rows = pl.int_ranges(ts.search_sorted(times, side="left"), ts.search_sorted(times, side="right"),
                         dtype=pl.UInt32, eager=True).explode()
    groups = series[list(dict.fromkeys([*keep, *_KEYS]))].gather(rows)
    ordered = (
        groups.with_columns(id_length())
        .sort(list(ORDER_KEYS), nulls_last=False, maintain_order=True)
        .drop(_ID_LEN)
    )
    # Scattering the few sorted rows into each column costs ~1/50 of gathering every row of the frame. The
    # exchange time is the same within a group, and a column whose moved rows all hold one value (exchange,
    # symbol) is unchanged by the move: both are kept as they are.
    return pl.DataFrame([
        series[name] if name == c.TIMESTAMP or ordered[name].n_unique() == 1
        else series[name].clone().scatter(rows, ordered[name])
        for name in keep
    ])
