"""Recorded exchange WebSocket files: one message a line, `<receive time> <raw JSON>`, gzip or plain text."""

from __future__ import annotations

import gzip
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import polars as pl

from ..contract import columns as c
from ..contract.errors import InputError
from .decode import TRADE_KIND, decode_binance
from .parse import LINE, RAW, RECV

SPOT, FUTURES, DELIVERY = "binance", "binance-futures", "binance-delivery"
# COIN-M (inverse) contracts: <base>USD_PERP or <base>USD_<yymmdd>; no other Binance market has such symbols.
COIN_M_SYMBOL = r"USD_(PERP|\d{6})$"
# File-name words that name the market, checked in this order.
_NAME_HINTS = ((DELIVERY, ("delivery", "coinm", "coin-m", "coin_m", "cm_")),
               (FUTURES, ("futures", "usdm", "usd-m", "usds", "um_")),
               (SPOT, ("spot",)))


class Recording(NamedTuple):
    """A decoded recording: ticks (with `_trade_id`), quarantine rows, non-trade messages by type, and the
    number of messages read (received = ticks + quarantine rows + sum(ignored))."""

    ticks: pl.DataFrame
    quarantine: pl.DataFrame
    ignored: dict[str, int]
    received: int


def receive_us(stamp: pl.Expr) -> pl.Expr:
    """Receive time in epoch microseconds from a stamp in s, ms, us or ns, told apart by magnitude (today is
    ~1.7e9 s = 1.7e12 ms = 1.7e15 us = 1.7e18 ns); decimals are seconds; null when it is none of these."""
    whole = stamp.cast(pl.Int64, strict=False)
    seconds = stamp.cast(pl.Float64, strict=False)
    return (
        pl.when(whole >= 10**17).then(whole // 1000)
        .when(whole >= 10**14).then(whole)
        .when(whole >= 10**11).then(whole * 1000)
        .when(whole >= 10**8).then(whole * 1_000_000)
        .when(whole.is_null() & (seconds >= 1e8) & (seconds < 1e11)).then((seconds * 1e6).cast(pl.Int64))
    )


def market_of(path: Path) -> str | None:
    """The Binance market a file name names (e.g. futures_btcusdt.gz -> binance-futures), or None."""
    name = path.name.lower()
    for exchange, words in _NAME_HINTS:
        if any(word in name for word in words):
            return exchange
    return None


def label(ticks: pl.DataFrame, hint: str | None) -> pl.DataFrame:
    """Exchange of each recorded trade: COIN-M by its symbol, else the file name's market, else USD-M when the
    message carries a trade kind (X, futures only), else spot."""
    fallback = pl.when(pl.col(TRADE_KIND).is_not_null()).then(pl.lit(FUTURES)).otherwise(pl.lit(SPOT))
    return ticks.with_columns(
        pl.when(pl.col(c.SYMBOL).str.contains(COIN_M_SYMBOL)).then(pl.lit(DELIVERY))
        .otherwise(pl.lit(hint) if hint else fallback).alias(c.EXCHANGE)
    )


def read_ws_recording(path: Path, *, exchange: str | None = None, now: datetime) -> Recording:
    """The trades of a recorded Binance WebSocket file, every line accounted for; `exchange` overrides the
    label taken from the symbols and the file name."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
            lines = handle.read().split("\n")
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read recording: {exc}", path=str(path)) from exc
    frame = pl.DataFrame({"_text": pl.Series(lines, dtype=pl.String)}).with_row_index(LINE, offset=1)
    parts = pl.col("_text").str.splitn(" ", 2)
    frame = frame.filter(pl.col("_text").str.strip_chars().str.len_bytes() > 0).select(
        pl.col(LINE).cast(pl.Int64),
        # a line without a readable stamp keeps a null receive time and is judged by its JSON
        receive_us(parts.struct.field("field_0")).alias(RECV),
        pl.coalesce(parts.struct.field("field_1"), pl.lit("")).alias(RAW),
    )
    decoded = decode_binance(frame, exchange=exchange or SPOT, source=str(path), now=now)
    ticks = decoded.ticks if exchange else label(decoded.ticks, market_of(path))
    return Recording(ticks, decoded.quarantine, decoded.ignored, frame.height)
