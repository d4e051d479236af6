"""Tardis `trades` CSV datasets (.csv or .csv.gz) read into tick frames, with quarantine of bad rows.

Three reads, cheapest first, each used only when the one before cannot vouch for the file: a typed read
checked with column reductions (clean files stop here); an all-text read validated with vectorised casts
(bad values); a line-level split (ragged rows, blank lines, bad UTF-8, broken gzip) that knows every line.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from ..contract import columns as c
from ..contract import schema
from ..contract.errors import InputError
from ..kernel import validate
from ..kernel.candles import split_numbered
from ..kernel.order import ID_NUMBER

GZIP_MAGIC = b"\x1f\x8b"
# Types of the file as written: timestamps stay integers until the vectorised conversion after the read.
CSV_SCHEMA: dict[str, pl.DataType] = {
    c.EXCHANGE: pl.String(),
    c.SYMBOL: pl.String(),
    c.TIMESTAMP: pl.Int64(),
    c.LOCAL_TIMESTAMP: pl.Int64(),
    c.ID: pl.String(),
    c.SIDE: pl.String(),
    c.PRICE: pl.Float64(),
    c.AMOUNT: pl.Float64(),
}
# For callers that never keep ids as text (a backfill without --store-ticks): integer ids parse straight
# to Int64, which reads faster than text and spares the later text -> number cast.
NUMERIC_CSV_SCHEMA: dict[str, pl.DataType] = {**CSV_SCHEMA, c.ID: pl.Int64()}
_ID_FIELD = list(c.TICK_COLUMNS).index(c.ID)
_CHUNK = 1 << 16
_TEXT = "__text"
_NUMBER = "__number"


@dataclass
class TickRead:
    """Result of reading one file: valid ticks, quarantined rows and read statistics."""

    ticks: pl.DataFrame
    quarantine: pl.DataFrame
    rows_read: int
    duplicates: int
    complete: bool  # False when the file was truncated (e.g. broken gzip)
    source: str
    id_numbers: pl.Series | None = None  # ids as Int64 when every id is an integer (clean files), for reuse
    single_series: bool = False  # True when the reader proved every row has one exchange and symbol
    # With `split`, a clean file of several series: its ticks per series (kernel.candles.split_numbered)
    parts: list[pl.DataFrame] | None = None


def read_trades(path: str | Path, *, now: datetime, numeric_ids: bool = False, split: bool = False) -> TickRead:
    """Read a Tardis trades CSV: a fast typed read when the file is clean, a tolerant line-level read otherwise.
    `numeric_ids` lets a clean file whose ids are all integers keep them as Int64 in `ticks` (ids then order
    as numbers); without it, ids are always text, as the data contract stores them. `split`: a clean file of
    several series also comes split by series (`parts`), its ids checked per series on the way (cheaper than
    over the whole file)."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise InputError("file not found", path=source)
    first_row = _check_header(path, source)
    schemas = [CSV_SCHEMA]
    if numeric_ids and _integer_id(first_row):
        schemas.insert(0, NUMERIC_CSV_SCHEMA)
    for csv_schema in schemas:
        try:
            # Tardis never quotes; quote_char=None keeps both paths splitting on every comma, the same way.
            frame = pl.read_csv(path, schema=csv_schema, has_header=True, quote_char=None)
        except (pl.exceptions.PolarsError, OSError, UnicodeError):
            # Unparseable numbers, ragged rows, bad UTF-8, broken gzip (or an id that is not an integer).
            continue
        facts = validate.inspect(frame, series_ids=not split)
        if not facts.clean:
            break  # bad values: the text read names them
        # Sortedness found by the inspection is flagged, so min/max and order checks downstream are O(1).
        ticks = validate.finish(frame, text_ids=csv_schema is CSV_SCHEMA, ascending=facts.ascending)
        parts = None
        if split and not facts.single_series:
            parts = _series_parts(ticks, facts.id_numbers, checked=not facts.ids_unchecked)
            if parts is None:
                break  # an id repeated within a series: the text read quarantines the repeats
        return TickRead(ticks, schema.empty(schema.QUARANTINE_SCHEMA), frame.height, 0, True, source,
                        facts.id_numbers, facts.single_series, parts)
    return _read_as_text(path, source, now) or _read_tolerant(path, source, now)


def _series_parts(ticks: pl.DataFrame, id_numbers: pl.Series | None, *, checked: bool) -> list[pl.DataFrame] | None:
    """The ticks of each series, their parsed ids riding along as ID_NUMBER; None when ids are not `checked` yet
    and some series repeats one (ids rising within each series prove it does not, cheaply)."""
    parts = split_numbered(ticks, id_numbers)
    if checked:
        return parts
    for part in parts:
        numbers = part.get_column(ID_NUMBER) if ID_NUMBER in part.columns else None
        if validate.has_duplicate_ids(part, numbers):
            return None
    return parts


def _integer_id(row: bytes | None) -> bool:
    """True when the id field of this data row is a plain integer (so the file's ids likely all are)."""
    fields = row.split(b",") if row else []
    return len(fields) > _ID_FIELD and fields[_ID_FIELD].strip().isdigit()


def _read_as_text(path: Path, source: str, now: datetime) -> TickRead | None:
    """Every field as text, validated with vectorised casts; None when lines and rows may not match one to one."""
    try:
        text = pl.read_csv(path, infer_schema=False, has_header=True, quote_char=None)
    except (pl.exceptions.PolarsError, OSError, UnicodeError):
        return None
    # Polars pads short rows and blank lines with nulls: only without any in required fields is row i line i + 2.
    required = [name for name in c.TICK_COLUMNS if name != c.ID]
    if text.columns != list(c.TICK_COLUMNS) or any(text.select(required).null_count().row(0)):
        return None
    lines = pl.int_range(2, text.height + 2, dtype=pl.Int64, eager=True)
    ticks, rejected = validate.validate_ticks(text, source=source, now=now, line_numbers=lines)
    duplicates = int((rejected[c.Q_REASON] == validate.R_DUPLICATE).sum())
    return TickRead(ticks, rejected, text.height, duplicates, True, source)


def _head(path: Path, source: str) -> tuple[bytes, bytes | None]:
    """The first line of the (possibly gzip) file and the second when whole, read tolerantly so a truncated
    body does not hide a good header."""
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
        whole = not handle.read(1)
    if head.startswith(GZIP_MAGIC):
        stream = zlib.decompressobj(wbits=31)
        try:
            head = stream.decompress(head, 1 << 16)
        except zlib.error as exc:
            raise InputError(f"cannot read the header: {exc}", path=source, line=1) from exc
        whole = stream.eof
    line, newline, rest = head.partition(b"\n")
    if not newline and not whole and len(head) < 1 << 16:
        raise InputError("file truncated before the end of the header", path=source, line=1)
    second, complete, _ = rest.partition(b"\n")
    return line, second if complete else None


def _check_header(path: Path, source: str) -> bytes | None:
    """The first data row (None when not whole in the first 64 KiB); raise InputError naming line 1 and the
    first column that differs from the Tardis trades header."""
    try:
        first, row = _head(path, source)
    except OSError as exc:
        raise InputError(f"cannot read the header: {exc}", path=source, line=1) from exc
    if not first:
        raise InputError("empty file: no header", path=source, line=1)
    names = first.decode("utf-8-sig", errors="replace").rstrip("\r\n").split(",")
    expected = list(c.TICK_COLUMNS)
    for position, want in enumerate(expected):
        got = names[position] if position < len(names) else None
        if got != want:
            raise InputError(
                f"unexpected header: column {position + 1} is {got!r}, expected {want!r} "
                f"(header must be {','.join(expected)})", path=source, line=1, field=want,
            )
    if len(names) > len(expected):
        raise InputError(
            f"unexpected header: extra column {names[len(expected)]!r} (header must be {','.join(expected)})",
            path=source, line=1, field=names[len(expected)],
        )
    return row


def read_bytes(path: Path) -> tuple[bytes, bool]:
    """File content, decompressed when gzip; (every byte recovered before a break, complete?)."""
    data = path.read_bytes()
    if not data.startswith(GZIP_MAGIC):
        return data, True
    out: list[bytes] = []
    rest = data
    while rest:
        stream = zlib.decompressobj(wbits=31)
        rest, ok = _inflate(stream, rest, out)
        if not ok:
            return b"".join(out), False
    return b"".join(out), True


def _inflate(stream, data: bytes, out: list[bytes]) -> tuple[bytes, bool]:
    """Inflate one gzip member into `out`; (bytes after the member, member ended cleanly?)."""
    for start in range(0, len(data), _CHUNK):
        chunk = data[start:start + _CHUNK]
        saved = stream.copy()
        try:
            out.append(stream.decompress(chunk))
        except zlib.error:
            # Corruption inside this chunk: replay it byte by byte to keep all output before the bad byte.
            for i in range(len(chunk)):
                try:
                    out.append(saved.decompress(chunk[i:i + 1]))
                except zlib.error:
                    return b"", False
            return b"", False
        if stream.eof:
            return stream.unused_data + data[start + _CHUNK:], True
    return b"", stream.eof


def _read_tolerant(path: Path, source: str, now: datetime) -> TickRead:
    """Line-level read: split lines, split fields with Polars string ops, quarantine what does not fit."""
    data, complete = read_bytes(path)
    # One C-level split of the whole text (faster here than exploding a Polars list); fields are split by Polars.
    text = data.decode("utf-8", errors="replace").split("\n")
    lines = (
        pl.DataFrame({_TEXT: text}, schema={_TEXT: pl.String})
        .with_row_index(_NUMBER, offset=1)
        .with_columns(pl.col(_NUMBER).cast(pl.Int64))
    )
    del text
    last = lines.tail(1)
    lines = lines.head(lines.height - 1) if (not complete or last[_TEXT].item() == "") else lines
    lines = lines.slice(1).with_columns(pl.col(_TEXT).str.strip_suffix("\r"))

    shape_field, shape_reason = _shape_problem()
    judged = lines.with_columns(shape_field.alias(c.Q_FIELD), shape_reason.alias(c.Q_REASON))
    misshapen = judged.filter(pl.col(c.Q_FIELD).is_not_null())
    shaped = judged.filter(pl.col(c.Q_FIELD).is_null()).select(
        pl.col(_TEXT).str.split_exact(",", len(c.TICK_COLUMNS) - 1).struct.rename_fields(list(c.TICK_COLUMNS)).struct.unnest(),
        pl.col(_TEXT).alias(c.Q_RAW),
        pl.col(_NUMBER),
    )
    ticks, rejected = validate.validate_ticks(
        shaped.drop(_NUMBER), source=source, now=now, line_numbers=shaped[_NUMBER]
    )
    parts = [validate.quarantine(source, misshapen.rename({_NUMBER: c.Q_LINE, _TEXT: c.Q_RAW}), now=now), rejected]
    if not complete:
        broken = last.select(
            pl.col(_NUMBER).alias(c.Q_LINE), pl.lit("file").alias(c.Q_FIELD),
            pl.lit(validate.R_TRUNCATED).alias(c.Q_REASON), pl.col(_TEXT).alias(c.Q_RAW),
        )
        parts.append(validate.quarantine(source, broken, now=now))
    quarantine = pl.concat(parts).sort(c.Q_LINE, maintain_order=True)
    duplicates = int((quarantine[c.Q_REASON] == validate.R_DUPLICATE).sum())
    return TickRead(ticks, quarantine, lines.height, duplicates, complete, source)


def _shape_problem() -> tuple[pl.Expr, pl.Expr]:
    """(field, reason) expressions for lines that cannot be split into the tick columns; null when fine."""
    text = pl.col(_TEXT)
    empty = text == ""
    broken_utf8 = text.str.contains("\ufffd", literal=True)
    ragged = text.str.count_matches(",", literal=True) != len(c.TICK_COLUMNS) - 1
    bad = empty | broken_utf8 | ragged
    field = pl.when(bad).then(pl.lit(validate.ROW_FIELD)).otherwise(pl.lit(None, pl.String))
    reason = (
        pl.when(empty).then(pl.lit(validate.R_EMPTY_LINE))
        .when(broken_utf8).then(pl.lit(validate.R_INVALID_UTF8))
        .when(ragged).then(pl.lit(validate.R_FIELD_COUNT))
        .otherwise(pl.lit(None, pl.String))
    )
    return field, reason


def __getattr__(name: str):
    """`download_trades` on first use, so reading local files never imports the HTTP client."""
    if name == "download_trades":
        from .tardis_download import download_trades

        return download_trades
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
