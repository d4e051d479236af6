"""Batch decoding of raw exchange messages into ticks, vectorised in Polars (one JSON parse per batch)."""

from __future__ import annotations

from datetime import datetime

import orjson
import polars as pl

from ..contract import columns as c
from ..contract import schema
from ..contract.schema import empty_quarantine, empty_ticks

# Substrings that mark a trade message; everything else (bookTicker, depth, snapshots) is skipped unparsed.
BINANCE_TRADE_MARK = '"e":"trade"'
TARDIS_TRADE_MARK = r'"type"\s*:\s*"trade"'  # a regex: tolerate pretty-printed messages
TARDIS_DISCONNECT_MARK = r'"type"\s*:\s*"disconnect"'

RAW = "_raw"
RECV = "_recv_us"
LINE = "_line"
TRADE_ID = "_trade_id"  # integer trade id kept beside the string id for dedupe and gap detection

TRADE_KIND = "_trade_kind"  # Binance futures "X": MARKET for order-book trades (absent on spot)
_BINANCE_DATA = pl.Struct(
    {"e": pl.String, "s": pl.String, "t": pl.Int64, "p": pl.String, "q": pl.String, "T": pl.Int64, "m": pl.Boolean,
     "X": pl.String}
)
_BINANCE = pl.Struct({"stream": pl.String, "data": _BINANCE_DATA})
# Numbers and strings both occur in normalized messages (ids are strings, prices numbers): decode leniently below.
_TARDIS = pl.Struct(
    {
        "type": pl.String, "symbol": pl.String, "exchange": pl.String, "id": pl.String, "price": pl.Float64,
        "amount": pl.Float64, "side": pl.String, "timestamp": pl.String, "localTimestamp": pl.String,
    }
)
_BINANCE_PY = {"s": str, "t": int, "p": str, "q": str, "T": int, "m": bool}
_TARDIS_PY = {"symbol": str, "exchange": str, "price": (int, float), "amount": (int, float), "side": str, "timestamp": str}


def raw_frame(messages: list[str], recv_us: list[int] | int, lines: list[int] | None = None) -> pl.DataFrame:
    """A frame of raw messages with their receive times (us since epoch) and optional 1-based line numbers."""
    recv = recv_us if isinstance(recv_us, list) else [recv_us] * len(messages)
    data = {RAW: pl.Series(RAW, messages, dtype=pl.String), RECV: pl.Series(RECV, recv, dtype=pl.Int64)}
    data[LINE] = pl.Series(LINE, lines if lines is not None else [None] * len(messages), dtype=pl.Int64)
    return pl.DataFrame(data)


def _json_decode(raw: pl.DataFrame, dtype: pl.Struct, py_types: dict, nested: str | None, source: str,
                 now: datetime) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows decoded into a `_msg` struct column, quarantine of rows whose JSON is malformed or mistyped)."""
    try:
        return raw.with_columns(pl.col(RAW).str.json_decode(dtype).alias("_msg")), empty_quarantine()
    except pl.exceptions.PolarsError:
        pass
    # Slow path, only when a batch holds a bad message: find the culprits one by one, decode the rest in bulk.
    faults = pl.Series("_qf", [_type_fault(m, py_types, nested) for m in raw.get_column(RAW).to_list()], dtype=pl.String)
    raw = raw.with_columns(faults)
    good = raw.filter(pl.col("_qf").is_null()).drop("_qf")
    bad = raw.filter(pl.col("_qf").is_not_null())
    reason = pl.when(pl.col("_qf") == "raw").then(pl.lit("malformed JSON")).otherwise(pl.lit("wrong JSON type"))
    quarantine = _quarantine(bad, pl.col("_qf"), reason, source, now)
    return good.with_columns(pl.col(RAW).str.json_decode(dtype).alias("_msg")), quarantine


def _type_fault(message: str, py_types: dict, nested: str | None) -> str | None:
    """Name of the first field of `message` with an unexpected JSON type, "raw" if it does not parse, else None."""
    try:
        obj = orjson.loads(message)
    except orjson.JSONDecodeError:
        return "raw"
    if not isinstance(obj, dict):
        return "raw"
    if nested is not None:
        obj = obj.get(nested)
        if obj is not None and not isinstance(obj, dict):
            return nested
        obj = obj or {}
    for key, kind in py_types.items():
        value = obj.get(key)
        # bool is an int in Python; a boolean where a number is due is a type error
        if value is not None and (not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)):
            return key
    return None


def _quarantine(rows: pl.DataFrame, field: pl.Expr | str, reason: pl.Expr | str, source: str, now: datetime) -> pl.DataFrame:
    """Quarantine rows for `rows` (raw frame columns) with the given field and reason."""
    if rows.height == 0:
        return empty_quarantine()
    as_expr = lambda v: pl.lit(v) if isinstance(v, str) else v  # noqa: E731
    frame = rows.select(
        pl.lit(source).alias(c.Q_SOURCE), pl.col(LINE).alias(c.Q_LINE), as_expr(field).alias(c.Q_FIELD),
        as_expr(reason).alias(c.Q_REASON), pl.col(RAW).alias(c.Q_RAW), pl.lit(now).alias(c.Q_QUARANTINED_AT),
    )
    return schema.conform(frame, schema.QUARANTINE_SCHEMA)


def _first_failure(checks: list[tuple[str, pl.Expr, str]]) -> tuple[pl.Expr, pl.Expr]:
    """(field, reason) expressions naming the first failing check of each row, null when all pass."""
    field = pl.lit(None, dtype=pl.String)
    reason = pl.lit(None, dtype=pl.String)
    for name, failed, why in reversed(checks):
        field = pl.when(failed.fill_null(True)).then(pl.lit(name)).otherwise(field)
        reason = pl.when(failed.fill_null(True)).then(pl.lit(why)).otherwise(reason)
    return field, reason


def _bad_flag(checks: list[tuple[str, pl.Expr, str]]) -> pl.Expr:
    """`_bad`: True where any check fails (a null check result counts as a failure)."""
    return pl.any_horizontal([bad.fill_null(True) for _, bad, _ in checks]).alias("_bad")


def _split(frame: pl.DataFrame, out: list[str], checks: list[tuple[str, pl.Expr, str]], source: str,
           now: datetime) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the `out` columns of rows passing every check, quarantine of the others naming their first failing
    field); `frame` carries the `_bad` flag of _bad_flag(checks)."""
    if not frame.get_column("_bad").any():
        return frame.select(out), empty_quarantine()  # the usual case: no quarantine to build
    field, reason = _first_failure(checks)
    bad = frame.filter(pl.col("_bad")).with_columns(field.alias("_qf"), reason.alias("_qr"))
    return frame.filter(~pl.col("_bad")).select(out), _quarantine(bad, pl.col("_qf"), pl.col("_qr"), source, now)


def _positive(col: str) -> pl.Expr:
    """True when `col` is not a finite number > 0."""
    return ~(pl.col(col).is_finite() & (pl.col(col) > 0)).fill_null(False) | pl.col(col).is_null()


def decode_binance(raw: pl.DataFrame, *, exchange: str, source: str, now: datetime) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Binance combined-stream trade messages -> (ticks with `_trade_id`, quarantine); other streams are skipped.

    timestamp = T (ms) * 1000 us; id = t; side = sell if m (buyer is maker) else buy; price, amount = float(p, q).
    """
    raw = raw.filter(pl.col(RAW).str.contains(BINANCE_TRADE_MARK, literal=True))
    if raw.height == 0:
        return _empty_with_id(), empty_quarantine()
    decoded, bad_json = _json_decode(raw, _BINANCE, _BINANCE_PY, "data", source, now)
    data = pl.col("_msg").struct.field("data")
    checks = [
        ("data", pl.col("_d").is_null(), "not a combined-stream message"),
        ("s", pl.col("_s").is_null() | (pl.col("_s") == ""), "missing symbol"),
        ("t", pl.col("_t").is_null(), "missing trade id"),
        ("T", pl.col("_T").is_null() | (pl.col("_T") <= 0), "missing or invalid trade time"),
        ("p", _positive(c.PRICE), "price is not a positive number"),
        ("q", _positive(c.AMOUNT), "quantity is not a positive number"),
        ("m", pl.col("_m").is_null(), "missing buyer-is-maker flag"),
    ]
    # Fields, checks and tick columns in one query: a chunk is a few hundred rows, so every extra Polars
    # call costs more than the work it does.
    frame = decoded.lazy().select(
        pl.col(RAW, RECV, LINE), data.alias("_d"), *[data.struct.field(k).alias(f"_{k}") for k in ("s", "t", "T", "m", "X")],
        data.struct.field("p").cast(pl.Float64, strict=False).alias(c.PRICE),
        data.struct.field("q").cast(pl.Float64, strict=False).alias(c.AMOUNT),
    ).with_columns(
        _bad_flag(checks),
        pl.lit(exchange).alias(c.EXCHANGE),
        pl.col("_s").str.to_uppercase().alias(c.SYMBOL),
        (pl.col("_T") * 1000).cast(schema.TS).alias(c.TIMESTAMP),
        pl.col(RECV).cast(schema.TS).alias(c.LOCAL_TIMESTAMP),
        pl.col("_t").cast(pl.String).alias(c.ID),
        pl.when(pl.col("_m")).then(pl.lit(c.SIDE_SELL)).otherwise(pl.lit(c.SIDE_BUY)).alias(c.SIDE),
        pl.col("_t").alias(TRADE_ID),
        pl.col("_X").alias(TRADE_KIND),
    ).collect(engine="in-memory")
    ticks, bad = _split(frame, [*c.TICK_COLUMNS, TRADE_ID, TRADE_KIND], checks, source, now)
    return ticks, (pl.concat([bad_json, bad], rechunk=False) if bad_json.height else bad)


def split_market(ticks: pl.DataFrame, *, source: str, now: datetime) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(order-book trades, quarantine rows of the others): Binance futures also streams insurance-fund and
    auto-deleveraging fills (X != MARKET) whose prices can sit far from the market; they are kept and
    counted, not turned into candles. Call after the id checks: those fills still take trade ids."""
    if TRADE_KIND not in ticks.columns:
        return ticks, empty_quarantine()
    off = pl.col(TRADE_KIND).is_not_null() & (pl.col(TRADE_KIND) != "MARKET")
    if not ticks.select(off.any()).item():
        return ticks, empty_quarantine()
    rejected = ticks.filter(off).select(
        pl.lit(source).alias(c.Q_SOURCE), pl.lit(None, pl.Int64).alias(c.Q_LINE), pl.lit("X").alias(c.Q_FIELD),
        pl.format("not an order-book trade (X={})", TRADE_KIND).alias(c.Q_REASON),
        pl.format("{} {} {} {} {}", c.SYMBOL, c.ID, c.TIMESTAMP, c.PRICE, c.AMOUNT).alias(c.Q_RAW),
        pl.lit(now).cast(schema.TS).alias(c.Q_QUARANTINED_AT),
    ).cast(schema.QUARANTINE_SCHEMA)
    return ticks.filter(~off), rejected


def _iso_to_ts(col: str) -> pl.Expr:
    """ISO-8601 UTC text (e.g. 2019-10-23T10:32:49.669Z) -> Datetime(us, UTC); null when unparsable."""
    return pl.col(col).str.to_datetime(time_unit="us", time_zone="UTC", strict=False)


def decode_tardis(raw: pl.DataFrame, *, source: str, now: datetime) -> tuple[pl.DataFrame, pl.DataFrame]:
    """tardis-machine normalized `trade` messages -> (ticks with `_trade_id`, quarantine); other types skipped.

    local_timestamp is the receive time; the message's own localTimestamp is tardis-machine's and is ignored
    unless no receive time was recorded.
    """
    raw = raw.filter(pl.col(RAW).str.contains(TARDIS_TRADE_MARK))
    if raw.height == 0:
        return _empty_with_id(), empty_quarantine()
    decoded, bad_json = _json_decode(raw, _TARDIS, _TARDIS_PY, None, source, now)
    checks = [
        ("exchange", pl.col("_exchange").is_null(), "missing exchange"),
        ("symbol", pl.col("_symbol").is_null() | (pl.col("_symbol") == ""), "missing symbol"),
        ("timestamp", pl.col("_ts").is_null(), "missing or unparsable timestamp"),
        ("price", _positive(c.PRICE), "price is not a positive number"),
        ("amount", _positive(c.AMOUNT), "amount is not a positive number"),
        ("side", ~pl.col("_side").is_in(list(c.SIDES)).fill_null(False), "side is not buy, sell or unknown"),
    ]
    frame = decoded.lazy().with_columns(
        pl.col("_msg").struct.field(k).alias(f"_{k}") for k in ("symbol", "exchange", "id", "side", "timestamp", "localTimestamp")
    ).with_columns(
        pl.col("_msg").struct.field("price").alias(c.PRICE),
        pl.col("_msg").struct.field("amount").alias(c.AMOUNT),
        _iso_to_ts("_timestamp").alias("_ts"),
        _iso_to_ts("_localTimestamp").alias("_lts"),
    ).with_columns(
        _bad_flag(checks),
        pl.col("_exchange").alias(c.EXCHANGE),
        pl.col("_symbol").alias(c.SYMBOL),
        pl.col("_ts").alias(c.TIMESTAMP),
        pl.coalesce(pl.col(RECV).cast(schema.TS), pl.col("_lts")).alias(c.LOCAL_TIMESTAMP),
        pl.col("_id").alias(c.ID),
        pl.col("_side").alias(c.SIDE),
        pl.col("_id").cast(pl.Int64, strict=False).alias(TRADE_ID),
    ).collect(engine="in-memory")
    ticks, bad = _split(frame, [*c.TICK_COLUMNS, TRADE_ID], checks, source, now)
    return ticks, (pl.concat([bad_json, bad], rechunk=False) if bad_json.height else bad)


def _empty_with_id() -> pl.DataFrame:
    """Empty ticks plus the integer `_trade_id` column."""
    return empty_ticks().with_columns(pl.lit(None, dtype=pl.Int64).alias(TRADE_ID))


def strip_trade_id(ticks: pl.DataFrame) -> pl.DataFrame:
    """Ticks without the helper `_trade_id` column, conforming to the tick schema."""
    return schema.conform(ticks, schema.TICK_SCHEMA)
