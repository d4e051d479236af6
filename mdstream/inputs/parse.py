"""Raw message frames, their one JSON parse, and the quarantine rows of messages that fail it or a check."""

from __future__ import annotations

from datetime import datetime

import orjson
import polars as pl

from ..contract import columns as c
from ..contract import schema
from ..contract.schema import empty_quarantine

RAW = "_raw"
RECV = "_recv_us"
LINE = "_line"
MSG = "_msg"

# Below this many messages a batch that fails to parse is split message by message.
_BISECT_FLOOR = 8
_EMPTY_QUARANTINE = empty_quarantine()


def no_quarantine() -> pl.DataFrame:
    """An empty quarantine frame (a zero-row view of one built once: building a frame costs ~0.2 ms)."""
    return _EMPTY_QUARANTINE.head(0)


def raw_frame(messages: list[str], recv_us: list[int] | int, lines: list[int] | None = None) -> pl.DataFrame:
    """A frame of raw messages with their receive times (us since epoch) and optional 1-based line numbers."""
    recv = recv_us if isinstance(recv_us, list) else [recv_us] * len(messages)
    data = {RAW: pl.Series(RAW, messages, dtype=pl.String), RECV: pl.Series(RECV, recv, dtype=pl.Int64)}
    data[LINE] = pl.Series(LINE, lines if lines is not None else [None] * len(messages), dtype=pl.Int64)
    return pl.DataFrame(data)


def parse(raw: pl.DataFrame, dtype: pl.Struct) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows with the message parsed into a `_msg` struct, rows Polars cannot parse into `dtype`).

    Every field is read once, by Polars, and checks and ticks both use that reading (a duplicated key means
    the same thing to both). A batch holding an unreadable message is bisected until the culprits are alone,
    so one bad message costs O(log n) extra parses, not one per message.
    """
    try:
        return raw.with_columns(pl.col(RAW).str.json_decode(dtype).alias(MSG)), raw.clear()
    except pl.exceptions.PolarsError:
        if raw.height <= 1:
            return raw.clear().with_columns(pl.lit(None, dtype=dtype).alias(MSG)), raw
    if raw.height <= _BISECT_FLOOR:
        parts = [parse(raw.slice(i, 1), dtype) for i in range(raw.height)]
    else:
        half = raw.height // 2
        parts = [parse(raw.slice(0, half), dtype), parse(raw.slice(half), dtype)]
    good = pl.concat([p[0] for p in parts], rechunk=False)
    bad = pl.concat([p[1] for p in parts], rechunk=False)
    return good, bad


def unreadable(bad: pl.DataFrame, dtype: pl.Struct, source: str, now: datetime) -> pl.DataFrame:
    """Quarantine rows of messages `parse` could not read, each naming why (malformed JSON, not an object, or
    the first field whose JSON kind does not fit `dtype`)."""
    if bad.height == 0:
        return no_quarantine()
    # Python only for rejected messages (rare), to say why; their values are never used.
    why = [_why(message, dtype) for message in bad.get_column(RAW).to_list()]
    return quarantine_rows(bad, pl.Series("_qf", [w[0] for w in why], pl.String),
                           pl.Series("_qr", [w[1] for w in why], pl.String), source, now)


def _why(message: str, dtype: pl.Struct) -> tuple[str, str]:
    """(field, reason) of a message that does not parse into `dtype`."""
    try:
        obj = orjson.loads(message)
    except orjson.JSONDecodeError:
        return "raw", "malformed JSON"
    if not isinstance(obj, dict):
        return "raw", "not a JSON object"
    for name, value in _misfits(obj, dtype):
        return name, f"wrong JSON type ({type(value).__name__})"
    return "raw", "unreadable message"


def _misfits(obj: dict, dtype: pl.Struct, prefix: str = ""):
    """(dotted field name, value) of every field of `obj` whose JSON kind does not fit `dtype`."""
    for field in dtype.fields:
        value = obj.get(field.name)
        if value is None:
            continue
        if isinstance(field.dtype, pl.Struct):
            if not isinstance(value, dict):
                yield prefix + field.name, value
            else:
                yield from _misfits(value, field.dtype, f"{prefix}{field.name}.")
        elif isinstance(value, (dict, list)):
            yield prefix + field.name, value


def quarantine_rows(rows: pl.DataFrame, field: pl.Expr | pl.Series | str, reason: pl.Expr | pl.Series | str,
                    source: str, now: datetime) -> pl.DataFrame:
    """Quarantine rows for raw-frame `rows` with the given field and reason (literals, expressions or series)."""
    if rows.height == 0:
        return no_quarantine()
    as_expr = lambda v: pl.lit(v) if isinstance(v, (str, pl.Series)) else v  # noqa: E731
    frame = rows.select(
        pl.lit(source).alias(c.Q_SOURCE), pl.col(LINE).alias(c.Q_LINE), as_expr(field).alias(c.Q_FIELD),
        as_expr(reason).alias(c.Q_REASON), pl.col(RAW).alias(c.Q_RAW), pl.lit(now).alias(c.Q_QUARANTINED_AT),
    )
    return schema.conform(frame, schema.QUARANTINE_SCHEMA)


def tick_quarantine(ticks: pl.DataFrame, field: pl.Expr | str, reason: pl.Expr | str, source: str,
                    now: datetime) -> pl.DataFrame:
    """Quarantine rows for decoded ticks (no raw message left): raw = "symbol id timestamp price amount"."""
    if ticks.height == 0:
        return no_quarantine()
    return ticks.select(
        pl.lit(source).alias(c.Q_SOURCE), pl.lit(None, pl.Int64).alias(c.Q_LINE),
        (pl.lit(field) if isinstance(field, str) else field).alias(c.Q_FIELD),
        (pl.lit(reason) if isinstance(reason, str) else reason).alias(c.Q_REASON),
        pl.format("{} {} {} {} {}", c.SYMBOL, c.ID, c.TIMESTAMP, c.PRICE, c.AMOUNT).alias(c.Q_RAW),
        pl.lit(now).cast(schema.TS).alias(c.Q_QUARANTINED_AT),
    ).cast(schema.QUARANTINE_SCHEMA)


Check = tuple[str, pl.Expr, str]  # (field, failed?, reason); a null result counts as a failure


def first_failure(checks: list[Check]) -> tuple[pl.Expr, pl.Expr]:
    """(field, reason) expressions naming the first failing check of each row, null when all pass."""
    field = pl.lit(None, dtype=pl.String)
    reason = pl.lit(None, dtype=pl.String)
    for name, failed, why in reversed(checks):
        field = pl.when(failed.fill_null(True)).then(pl.lit(name)).otherwise(field)
        reason = pl.when(failed.fill_null(True)).then(pl.lit(why)).otherwise(reason)
    return field, reason


def any_failure(checks: list[Check]) -> pl.Expr:
    """`_bad`: True where any check fails."""
    return pl.any_horizontal([bad.fill_null(True) for _, bad, _ in checks]).alias("_bad")


def split_checked(frame: pl.DataFrame, out: list[str], checks: list[Check], source: str,
                  now: datetime) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the `out` columns of rows passing every check, quarantine of the others naming their first failing
    check); `frame` carries the `_bad` flag of any_failure(checks)."""
    if not frame.get_column("_bad").any():
        return frame.select(out), no_quarantine()  # the usual case: no quarantine to build
    field, reason = first_failure(checks)
    bad = frame.filter(pl.col("_bad")).with_columns(field.alias("_qf"), reason.alias("_qr"))
    return frame.filter(~pl.col("_bad")).select(out), quarantine_rows(bad, pl.col("_qf"), pl.col("_qr"), source, now)


def not_positive(value: pl.Expr, maximum: float) -> pl.Expr:
    """True unless `value` is a finite number in (0, maximum]."""
    return ~(value.is_finite() & (value > 0) & (value <= maximum)).fill_null(False)


def count_types(kinds: pl.Series) -> dict[str, int]:
    """{message type: count} of a column of type names."""
    if kinds.len() == 0:
        return {}
    counts = kinds.value_counts()
    return dict(zip(counts.get_column(kinds.name).to_list(), counts.get_column("count").to_list()))
