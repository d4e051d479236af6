"""Exchange messages -> ticks, vectorised in Polars: one JSON parse per chunk, every message accounted for.

Each message becomes exactly one of: a tick, a quarantine row naming the field and the reason, or a non-trade
message counted by its type (bookTicker, depthUpdate, subscription replies, snapshots, ...).
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import NamedTuple

import polars as pl

from ..contract import columns as c
from ..contract import schema
from ..contract.schema import empty_ticks
from ..kernel.plans import SMALL_PLAN
from .parse import (
    LINE,
    MSG,
    RAW,
    RECV,
    Check,
    any_failure,
    count_types,
    no_quarantine,
    not_positive,
    parse,
    quarantine_rows,
    raw_frame,
    split_checked,
    tick_quarantine,
    unreadable,
)

__all__ = ["Decoded", "LINE", "RAW", "RECV", "TRADE_ID", "TRADE_KIND", "decode_binance", "decode_tardis", "raw_frame",
           "split_market", "strip_trade_id"]

TRADE_ID = "_trade_id"  # integer trade id kept beside the string id for dedupe and gap detection
TRADE_KIND = "_trade_kind"  # Binance futures "X": MARKET for order-book trades (absent on spot)
TRADE = "trade"
UNRECOGNISED = "unrecognised message"

# Trade times that can be right: from the first bitcoin block (2009-01-03) to 2100-01-01, epoch milliseconds.
# A time in seconds, microseconds or nanoseconds falls outside by orders of magnitude.
MIN_TRADE_MS = 1_230_940_800_000
MAX_TRADE_MS = 4_102_444_800_000
# Ceilings no real trade reaches (prices in the weakest quote currencies stay below 1e10, sizes below 1e13).
MAX_PRICE = 1e12
MAX_AMOUNT = 1e15
BINANCE_SYMBOL = r"^[A-Za-z0-9][A-Za-z0-9_]{1,39}$"
TARDIS_SYMBOL = r"^[A-Za-z0-9@][A-Za-z0-9_\-./:@]{0,63}$"

_S = pl.String
_TRADE_FIELDS = ("e", "s", "t", "p", "q", "T", "m", "X")
# Every leaf is read as text (numbers keep their digits) and typed by the checks below, so a mistyped field is a
# counted reason, not a failed batch. Combined streams only (the sources subscribe to them; recordings hold them).
_BINANCE = pl.Struct({"stream": _S, "id": _S, "code": _S, "lastUpdateId": _S,
                      "data": pl.Struct({k: _S for k in _TRADE_FIELDS})})
_TARDIS = pl.Struct({k: _S for k in ("type", "symbol", "exchange", "id", "price", "amount", "side", "timestamp",
                                     "localTimestamp")})


class Decoded(NamedTuple):
    """What a chunk of messages became: ticks (with `_trade_id`), quarantine rows, and non-trade messages by type."""

    ticks: pl.DataFrame
    quarantine: pl.DataFrame
    ignored: dict[str, int]


def _binance_kind() -> pl.Expr:
    """Message type: the event type, else the stream name after its symbol, else reply, snapshot or error."""
    m = pl.col(MSG).struct
    e, stream = m.field("data").struct.field("e"), m.field("stream")
    return (
        pl.when(e.is_not_null()).then(e)
        .when(stream.is_not_null()).then(stream.str.splitn("@", 2).struct.field("field_1"))
        .when(m.field("id").is_not_null()).then(pl.lit("reply"))
        .when(m.field("lastUpdateId").is_not_null()).then(pl.lit("snapshot"))
        .when(m.field("code").is_not_null()).then(pl.lit("error"))
        .alias("_kind")
    )


def _sort_out(frame: pl.DataFrame, out: list[str], checks: list[Check], source: str,
              now: datetime) -> Decoded:
    """Ticks, quarantine (unrecognised messages, trades failing a check) and non-trade counts of a checked frame
    carrying `_kind` and `_bad`."""
    kinds = frame.get_column("_kind")
    if kinds.null_count() == 0 and (kinds == TRADE).all():
        ticks, rejected = split_checked(frame, out, checks, source, now)  # the usual case on a live trade feed
        return Decoded(ticks, rejected, {})
    kind = pl.col("_kind")
    unknown = quarantine_rows(frame.filter(kind.is_null()), "raw", UNRECOGNISED, source, now)
    ignored = count_types(frame.filter(kind.is_not_null() & (kind != TRADE)).get_column("_kind"))
    ticks, rejected = split_checked(frame.filter(kind == TRADE), out, checks, source, now)
    return Decoded(ticks, _concat_quarantine(unknown, rejected), ignored)


@lru_cache(maxsize=64)
def _binance_plan(exchange: str, symbols: tuple[str, ...] | None) -> tuple[list[pl.Expr], list[Check], list[pl.Expr]]:
    """(field expressions, checks, tick columns) of the Binance decoder: built once per subscription."""
    data = pl.col(MSG).struct.field("data").struct
    fields = [pl.col(RAW, RECV, LINE), pl.col(MSG).struct.field("stream").alias("_stream"),
              *[data.field(k).alias(f"_{k}") for k in _TRADE_FIELDS], _binance_kind()]
    symbol = pl.col("_s").str.to_uppercase()
    t_int, ms = pl.col("_t").cast(pl.Int64, strict=False), pl.col("_T").cast(pl.Int64, strict=False)
    price, amount = pl.col("_p").cast(pl.Float64, strict=False), pl.col("_q").cast(pl.Float64, strict=False)
    in_range = (ms >= MIN_TRADE_MS) & (ms < MAX_TRADE_MS)
    checks = [
        ("s", pl.col("_s").is_null() | (pl.col("_s") == ""), "missing symbol"),
        ("s", ~symbol.is_in(list(symbols)) if symbols else ~pl.col("_s").str.contains(BINANCE_SYMBOL),
         "symbol not subscribed" if symbols else "symbol is not a valid exchange symbol"),
        ("stream", pl.col("_stream").is_not_null()
         & (pl.col("_stream").str.to_lowercase() != pl.col("_s").str.to_lowercase() + "@trade"),
         "stream does not match the trade's symbol"),
        ("t", t_int.is_null(), "missing trade id or not an integer"),
        ("T", ~in_range, "missing trade time, or not epoch milliseconds between 2009 and 2100"),
        ("p", not_positive(price, MAX_PRICE), f"price is not a positive number up to {MAX_PRICE:g}"),
        ("q", not_positive(amount, MAX_AMOUNT), f"quantity is not a positive number up to {MAX_AMOUNT:g}"),
        ("m", ~pl.col("_m").is_in(["true", "false"]), "missing or invalid buyer-is-maker flag"),
    ]
    ticks = [
        any_failure(checks), pl.lit(exchange).alias(c.EXCHANGE), symbol.alias(c.SYMBOL),
        (pl.when(in_range).then(ms) * 1000).cast(schema.TS).alias(c.TIMESTAMP),
        pl.col(RECV).cast(schema.TS).alias(c.LOCAL_TIMESTAMP), t_int.cast(pl.String).alias(c.ID),
        pl.when(pl.col("_m") == "true").then(pl.lit(c.SIDE_SELL)).otherwise(pl.lit(c.SIDE_BUY)).alias(c.SIDE),
        price.alias(c.PRICE), amount.alias(c.AMOUNT), t_int.alias(TRADE_ID), pl.col("_X").alias(TRADE_KIND),
    ]
    return fields, checks, ticks


def decode_binance(raw: pl.DataFrame, *, exchange: str, source: str, now: datetime,
                   symbols: tuple[str, ...] | None = None) -> Decoded:
    """Binance combined-stream trade messages -> ticks; `symbols` (upper case): the subscription, if any.

    timestamp = T (ms) * 1000 us; id = t; side = sell if m (buyer is maker) else buy; price, amount = float(p, q).
    """
    parsed, bad = parse(raw, _BINANCE)
    unread = unreadable(bad, _BINANCE, source, now)
    if parsed.height == 0:
        return Decoded(_empty_with_id(), unread, {})
    fields, checks, ticks = _binance_plan(exchange, tuple(symbols) if symbols else None)
    # One query from parsed messages to checked ticks: a chunk is a few hundred rows, so every extra Polars
    # call costs more than the work it does.
    frame = parsed.lazy().select(fields).with_columns(ticks).collect(engine="in-memory", optimizations=SMALL_PLAN)
    out = _sort_out(frame, [*c.TICK_COLUMNS, TRADE_ID, TRADE_KIND], checks, source, now)
    return out if not unread.height else out._replace(quarantine=_concat_quarantine(unread, out.quarantine))


def split_market(ticks: pl.DataFrame, *, source: str, now: datetime) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(order-book trades, quarantine rows of the others): Binance futures also streams insurance-fund and
    auto-deleveraging fills (X != MARKET) whose prices can sit far from the market; they are kept and
    counted, not turned into candles. Call after the id checks: those fills still take trade ids."""
    if TRADE_KIND not in ticks.columns or ticks.get_column(TRADE_KIND).null_count() == ticks.height:
        return ticks, no_quarantine()
    off = pl.col(TRADE_KIND).is_not_null() & (pl.col(TRADE_KIND) != "MARKET")
    if not ticks.select(off.any()).item():
        return ticks, no_quarantine()
    reason = pl.format("not an order-book trade (X={})", pl.col(TRADE_KIND).str.slice(0, 40))
    return ticks.filter(~off), tick_quarantine(ticks.filter(off), "X", reason, source, now)


def _iso_to_ts(col: str) -> pl.Expr:
    """ISO-8601 UTC text (e.g. 2019-10-23T10:32:49.669Z) -> Datetime(us, UTC); null when unparsable."""
    return pl.col(col).str.to_datetime(time_unit="us", time_zone="UTC", strict=False)


@lru_cache(maxsize=64)
def _tardis_plan(exchange: str | None, symbols: tuple[str, ...] | None) -> tuple[list[pl.Expr], list[Check], list[pl.Expr]]:
    """(field expressions, checks, tick columns) of the tardis-machine decoder: built once per subscription."""
    m = pl.col(MSG).struct
    fields = [pl.col(RAW, RECV, LINE), *[m.field(f.name).alias(f"_{f.name}") for f in _TARDIS.fields],
              m.field("type").alias("_kind")]
    ts, lts = _iso_to_ts("_timestamp"), _iso_to_ts("_localTimestamp")
    price, amount = pl.col("_price").cast(pl.Float64, strict=False), pl.col("_amount").cast(pl.Float64, strict=False)
    lo, hi = (pl.lit(v * 1000).cast(schema.TS) for v in (MIN_TRADE_MS, MAX_TRADE_MS))
    checks = [
        ("exchange", pl.col("_exchange").is_null(), "missing exchange"),
        ("exchange", pl.col("_exchange") != exchange if exchange else pl.lit(False), "exchange not subscribed"),
        ("symbol", pl.col("_symbol").is_null() | (pl.col("_symbol") == ""), "missing symbol"),
        ("symbol", ~pl.col("_symbol").str.to_uppercase().is_in(list(symbols)) if symbols
         else ~pl.col("_symbol").str.contains(TARDIS_SYMBOL),
         "symbol not subscribed" if symbols else "symbol is not a valid exchange symbol"),
        ("timestamp", ts.is_null() | (ts < lo) | (ts >= hi), "missing or unparsable timestamp, or not between 2009 and 2100"),
        ("price", not_positive(price, MAX_PRICE), f"price is not a positive number up to {MAX_PRICE:g}"),
        ("amount", not_positive(amount, MAX_AMOUNT), f"amount is not a positive number up to {MAX_AMOUNT:g}"),
        ("side", ~pl.col("_side").is_in(list(c.SIDES)).fill_null(False), "side is not buy, sell or unknown"),
    ]
    ticks = [
        any_failure(checks), pl.col("_exchange").alias(c.EXCHANGE), pl.col("_symbol").alias(c.SYMBOL),
        ts.alias(c.TIMESTAMP), pl.coalesce(pl.col(RECV).cast(schema.TS), lts).alias(c.LOCAL_TIMESTAMP),
        pl.col("_id").alias(c.ID), pl.col("_side").alias(c.SIDE), price.alias(c.PRICE), amount.alias(c.AMOUNT),
        pl.col("_id").cast(pl.Int64, strict=False).alias(TRADE_ID),
    ]
    return fields, checks, ticks


def decode_tardis(raw: pl.DataFrame, *, source: str, now: datetime, exchange: str | None = None,
                  symbols: tuple[str, ...] | None = None) -> Decoded:
    """tardis-machine normalized messages -> ticks of `exchange` (any when None); `symbols`: the subscription.

    local_timestamp is the receive time; the message's own localTimestamp is tardis-machine's and is used
    only when no receive time was recorded.
    """
    parsed, bad = parse(raw, _TARDIS)
    unread = unreadable(bad, _TARDIS, source, now)
    if parsed.height == 0:
        return Decoded(_empty_with_id(), unread, {})
    subscribed = tuple(s.upper() for s in symbols) if symbols else None
    fields, checks, ticks = _tardis_plan(exchange, subscribed)
    frame = parsed.lazy().select(fields).with_columns(ticks).collect(engine="in-memory", optimizations=SMALL_PLAN)
    out = _sort_out(frame, [*c.TICK_COLUMNS, TRADE_ID], checks, source, now)
    return out if not unread.height else out._replace(quarantine=_concat_quarantine(unread, out.quarantine))


def _concat_quarantine(*parts: pl.DataFrame) -> pl.DataFrame:
    """The non-empty quarantine frames as one."""
    kept = [p for p in parts if p.height]
    if not kept:
        return no_quarantine()
    return kept[0] if len(kept) == 1 else pl.concat(kept, rechunk=False)


def _empty_with_id() -> pl.DataFrame:
    """Empty ticks plus the integer `_trade_id` column."""
    return empty_ticks().with_columns(pl.lit(None, dtype=pl.Int64).alias(TRADE_ID))


def strip_trade_id(ticks: pl.DataFrame) -> pl.DataFrame:
    """Ticks without the helper `_trade_id` column, conforming to the tick schema."""
    return schema.conform(ticks, schema.TICK_SCHEMA)
