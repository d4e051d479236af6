"""Tick validation and quarantine: vectorised checks shared by file and live sources."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from ..contract import columns as c
from ..contract import schema

# Reasons are fixed strings so quarantine rows can be counted and grouped by reason.
R_FIELD_COUNT = f"wrong number of fields (expected {len(c.TICK_COLUMNS)})"
R_EMPTY_LINE = "empty line"
R_INVALID_UTF8 = "invalid UTF-8"
R_MISSING = "missing value"
R_NOT_INTEGER = "not an integer"
R_NOT_NUMBER = "not a number"
R_NOT_POSITIVE = "not positive"
R_UNKNOWN_SIDE = "unknown side (expected buy, sell or unknown)"
R_MILLISECONDS = "timestamp in milliseconds, expected microseconds (value < 1e14)"
R_NANOSECONDS = "timestamp in nanoseconds, expected microseconds (value >= 1e17)"
R_DUPLICATE = "duplicate trade id"
R_TRUNCATED = "file truncated"

ROW_FIELD = "row"
# Microseconds since the epoch: below 1e14 is before 1973 (a millisecond clock); 1e17 is year 5138 (nanoseconds).
MIN_US = 10**14
MAX_US = 10**17

_TIMESTAMPS = (c.TIMESTAMP, c.LOCAL_TIMESTAMP)
_AMOUNTS = (c.PRICE, c.AMOUNT)
_TEXT = (c.EXCHANGE, c.SYMBOL, c.ID, c.SIDE)
_LINE = "__line"
_ORDER = "__order"
_BAD = "__bad"


def _text(name: str, dtype: pl.DataType) -> pl.Expr:
    """Column as String with empty values as null (a CSV's empty field is a missing value)."""
    expr = pl.col(name) if dtype == pl.String else pl.col(name).cast(pl.String)
    return pl.when(expr == "").then(None).otherwise(expr)


def _micros(name: str, dtype: pl.DataType) -> pl.Expr:
    """Column as Int64 microseconds since the epoch; null where it does not parse."""
    if isinstance(dtype, pl.Datetime):
        return pl.col(name).dt.epoch("us")
    return pl.col(name).cast(pl.Int64, strict=False)


def _number(name: str, dtype: pl.DataType) -> pl.Expr:
    """Column as Float64; null where it does not parse."""
    return pl.col(name).cast(pl.Float64, strict=False)


def _present(name: str, dtype: pl.DataType) -> pl.Expr:
    """True where the column holds a value (not null, not empty text)."""
    if dtype == pl.String:
        return (pl.col(name) != "").fill_null(False)
    return pl.col(name).is_not_null()


def normalise(df: pl.DataFrame) -> pl.DataFrame:
    """`df` with tick columns as String / Int64 microseconds / Float64, plus `__present_<name>` flags."""
    missing = [name for name in c.TICK_COLUMNS if name not in df.columns]
    df = df.with_columns([pl.lit(None, pl.String).alias(name) for name in missing])
    dtypes = df.schema
    present = [_present(name, dtypes[name]).alias(f"__present_{name}") for name in (*_TIMESTAMPS, *_AMOUNTS)]
    typed = (
        [_text(name, dtypes[name]).alias(name) for name in _TEXT]
        + [_micros(name, dtypes[name]).alias(name) for name in _TIMESTAMPS]
        + [_number(name, dtypes[name]).alias(name) for name in _AMOUNTS]
    )
    return df.with_columns(present).with_columns(typed)


def checks() -> list[tuple[str, pl.Expr, str]]:
    """(field, row-is-bad expression, reason) over a normalised frame, in priority order."""
    out: list[tuple[str, pl.Expr, str]] = [
        (c.EXCHANGE, pl.col(c.EXCHANGE).is_null(), R_MISSING),
        (c.SYMBOL, pl.col(c.SYMBOL).is_null(), R_MISSING),
    ]
    for name in _TIMESTAMPS:
        value = pl.col(name)
        out.append((name, ~pl.col(f"__present_{name}"), R_MISSING))
        out.append((name, value.is_null(), R_NOT_INTEGER))
        out.append((name, value < MIN_US, R_MILLISECONDS))
        out.append((name, value >= MAX_US, R_NANOSECONDS))
    out.append((c.SIDE, pl.col(c.SIDE).is_null(), R_MISSING))
    out.append((c.SIDE, ~pl.col(c.SIDE).is_in(c.SIDES), R_UNKNOWN_SIDE))
    for name in _AMOUNTS:
        value = pl.col(name)
        out.append((name, ~pl.col(f"__present_{name}"), R_MISSING))
        # NaN compares greater than every number in Polars, so finiteness is checked explicitly.
        out.append((name, value.is_null() | ~value.is_finite(), R_NOT_NUMBER))
        out.append((name, value <= 0, R_NOT_POSITIVE))
    return out


@dataclass(frozen=True)
class Inspection:
    """What one pass over a typed tick frame established: clean (no bad row, no duplicate id), one series,
    and the ids as Int64 when every id is an integer (reused by the order and gap checks)."""

    clean: bool
    single_series: bool = False
    id_numbers: pl.Series | None = None  # flagged sorted when the ids strictly rise
    ascending: tuple[str, ...] = ()  # columns whose ascending order may be flagged on the frame
    ids_unchecked: bool = False  # several series, distinct ids per series left to the caller (series_ids=False)


def inspect(df: pl.DataFrame, *, series_ids: bool = True) -> Inspection:
    """Inspection of a typed tick frame (Int64 us timestamps, Float64 amounts) by column reductions. With
    `series_ids=False`, ids of a frame of several series not rising as one sequence are not checked for
    repeats here (`ids_unchecked`): a caller that splits the frame anyway checks each series more cheaply."""
    if df.height == 0:
        return Inspection(True, True)
    # Column reductions instead of per-row flags: equivalent and several times cheaper (and cheaper again
    # through the lazy engine, which fuses them). Comparing with the first row's exchange and symbol also
    # proves the frame is one series, as a Tardis day file always is.
    exchange, symbol, side = df[c.EXCHANGE][0], df[c.SYMBOL][0], pl.col(c.SIDE)
    if exchange is None or symbol is None:
        return Inspection(False)
    facts = df.lazy().select(
        *[(pl.col(name).null_count() == 0).alias(f"_present_{name}") for name in c.TICK_COLUMNS if name != c.ID],
        (pl.col(c.EXCHANGE) == exchange).all().alias(c.EXCHANGE), (pl.col(c.SYMBOL) == symbol).all().alias(c.SYMBOL),
        pl.any_horizontal(*[side == value for value in c.SIDES]).all().alias(c.SIDE),
        *[((pl.col(name).min() >= MIN_US) & (pl.col(name).max() < MAX_US)).alias(name) for name in _TIMESTAMPS],
        # A NaN or infinity anywhere makes the sum non-finite.
        *[((pl.col(name).min() > 0) & pl.col(name).sum().is_finite()).alias(name) for name in _AMOUNTS],
    )
    # One call, both queries at once: the id cast is needed whenever the file is clean.
    fact_row, id_frame = pl.collect_all([facts, df.lazy().select(pl.col(c.ID).cast(pl.Int64, strict=False))])
    found, ids = fact_row.row(0, named=True), id_frame.to_series()
    one_exchange, one_symbol = found.pop(c.EXCHANGE), found.pop(c.SYMBOL)
    one = one_exchange and one_symbol
    texts = (bool(exchange) and bool(symbol),) if one else df.lazy().select(
        (pl.col(name).str.len_bytes().min() > 0).alias(name) for name in (c.EXCHANGE, c.SYMBOL)
    ).collect().row(0)
    if not all(texts + tuple(found.values())):
        return Inspection(False)
    unchecked = False
    if df.height > 1 and _ids_rising(df, ids):
        ids = ids.set_sorted()  # later order and gap checks then cost nothing
    elif not one and not series_ids:
        unchecked = True
    elif (df.height > 1 and (one or not _ids_rising_per_series(df, ids, one_exchange))
          and df.select(_duplicate_mask().any()).item()):
        return Inspection(False)
    # Not the event time: flagged sorted, it sends Polars' streaming group-by down a path 2.5x slower.
    ascending = (c.LOCAL_TIMESTAMP,) if df[c.LOCAL_TIMESTAMP].is_sorted() else ()
    return Inspection(True, one, ids if ids.null_count() == 0 else None, ascending, unchecked)


def has_duplicate_ids(df: pl.DataFrame, int_ids: pl.Series | None = None) -> bool:
    """True when two rows share (exchange, symbol, id) with a non-null id."""
    if df.height < 2 or _ids_rising(df, int_ids):
        return False
    return bool(df.select(_duplicate_mask().any()).item())


def _ids_rising(df: pl.DataFrame, int_ids: pl.Series | None = None) -> bool:
    """True when every id is an integer and they strictly increase: then all are distinct, no hashing needed."""
    ids = int_ids if int_ids is not None else df[c.ID].cast(pl.Int64, strict=False)
    # A null (missing or non-integer id) would hide from the comparison, so only a column without any qualifies;
    # the O(n) sortedness flag check rules most files in or out before the strict pairwise test.
    if ids.null_count() or ids.len() < 2 or not ids.is_sorted():
        return False
    return bool((ids.slice(1) > ids.slice(0, ids.len() - 1)).all())


_STEP = "_id_step"


def _ids_rising_per_series(df: pl.DataFrame, ids: pl.Series, one_exchange: bool = False) -> bool:
    """True when every id is an integer and they strictly increase within each (exchange, symbol): no duplicate
    then, proved ~4x cheaper than hashing (exchange, symbol, id) rows (several symbols in one file). With
    `one_exchange` (known: every row has one venue) only the symbol is hashed."""
    if ids.null_count():
        return False
    keys = [c.SYMBOL] if one_exchange else [c.EXCHANGE, c.SYMBOL]
    step = pl.col(_STEP).diff().over(keys)
    return bool(df.select(*keys, ids.alias(_STEP)).select((step.fill_null(1) > 0).all()).item())


def _duplicate_mask() -> pl.Expr:
    """Rows whose (exchange, symbol, id) appeared on an earlier row; rows with a null id never count."""
    return pl.col(c.ID).is_not_null() & ~pl.struct(c.EXCHANGE, c.SYMBOL, c.ID).is_first_distinct()


def finish(norm: pl.DataFrame, *, text_ids: bool = True, ascending: tuple[str, ...] = ()) -> pl.DataFrame:
    """Valid normalised rows as a frame conforming to schema.TICK_SCHEMA (us epoch ints -> UTC datetimes);
    `text_ids=False` leaves integer ids as they are (casting millions of them to text costs more than the read);
    the `ascending` columns are flagged sorted."""
    def column(name: str, dtype: pl.DataType) -> pl.Expr:
        """One output column, converted as the docstring says."""
        if name in _TIMESTAMPS:
            expr = pl.col(name).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        else:
            expr = pl.col(name) if name == c.ID and not text_ids else pl.col(name).cast(dtype)
        return (expr.set_sorted() if name in ascending else expr).alias(name)

    return norm.select([column(name, dtype) for name, dtype in schema.TICK_SCHEMA.items()])


def quarantine(source: str, rows: pl.DataFrame, *, now: datetime) -> pl.DataFrame:
    """Quarantine frame (schema.QUARANTINE_SCHEMA) from `rows` with line, field, reason and raw columns."""
    return rows.select(
        pl.lit(source, pl.String).alias(c.Q_SOURCE),
        pl.col(c.Q_LINE).cast(pl.Int64),
        pl.col(c.Q_FIELD).cast(pl.String),
        pl.col(c.Q_REASON).cast(pl.String),
        pl.col(c.Q_RAW).cast(pl.String),
        pl.lit(now).cast(schema.TS).alias(c.Q_QUARANTINED_AT),
    )


def _raw_expr(df: pl.DataFrame) -> pl.Expr:
    """The row as text: the given raw column, else the tick fields joined by commas (nulls empty)."""
    if c.Q_RAW in df.columns:
        return pl.col(c.Q_RAW).cast(pl.String)
    fields = [pl.col(name).cast(pl.String).fill_null("") if name in df.columns else pl.lit("") for name in c.TICK_COLUMNS]
    return pl.concat_str(fields, separator=",")


def validate_ticks(
    df: pl.DataFrame, *, source: str, now: datetime, line_numbers: pl.Series | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(valid ticks conforming to TICK_SCHEMA, quarantine rows): one quarantine row per rejected row, first fault wins."""
    lines = line_numbers.cast(pl.Int64) if line_numbers is not None else pl.repeat(None, df.height, dtype=pl.Int64, eager=True)
    norm = normalise(df.with_columns(lines.alias(_LINE)).with_row_index(_ORDER))
    rules = checks()
    flagged = norm.with_columns(pl.any_horizontal([test.fill_null(False) for _, test, _ in rules]).alias(_BAD))
    good = flagged.filter(~pl.col(_BAD))
    field_expr: pl.Expr = pl.lit(None, pl.String)
    reason_expr: pl.Expr = pl.lit(None, pl.String)
    # Built back to front so the first check in priority order ends up outermost and wins.
    for field, test, reason in reversed(rules):
        field_expr = pl.when(test.fill_null(False)).then(pl.lit(field)).otherwise(field_expr)
        reason_expr = pl.when(test.fill_null(False)).then(pl.lit(reason)).otherwise(reason_expr)
    # Naming the fault is done only for the (usually few) bad rows.
    bad = flagged.filter(pl.col(_BAD)).with_columns(field_expr.alias(c.Q_FIELD), reason_expr.alias(c.Q_REASON))
    if has_duplicate_ids(good):
        dup = _duplicate_mask()
        dups = good.filter(dup).with_columns(pl.lit(c.ID).alias(c.Q_FIELD), pl.lit(R_DUPLICATE).alias(c.Q_REASON))
        good = good.filter(~dup)
        bad = pl.concat([bad, dups], how="diagonal_relaxed").sort(_ORDER)
    # The raw text comes from the input as given, not from the normalised values.
    order = bad[_ORDER]
    raw = df[c.Q_RAW].gather(order) if c.Q_RAW in df.columns else df.select(_raw_expr(df).gather(order)).to_series()
    rejected = bad.with_columns(pl.col(_LINE).alias(c.Q_LINE), raw.cast(pl.String).alias(c.Q_RAW))
    return finish(good), quarantine(source, rejected, now=now)
