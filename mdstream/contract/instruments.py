"""Instrument metadata: what one unit of a trade's `amount` is worth, per (exchange, symbol).

The volume rule of the data contract (s = contract_size, per trade, summed per window):

    kind      volume    base_volume        quote_volume         unit of s
    spot      amount    amount * s         price * amount * s   base asset (1)
    linear    amount    amount * s         price * amount * s   base asset per unit of amount
    inverse   amount    amount * s / price amount * s           quote currency per unit of amount
    quanto    amount    amount * s         price * amount * s   settlement currency per unit of price

so vwap = quote_volume / base_volume is a price for every kind. A quanto contract (BitMEX ETHUSD) pays a fixed
multiplier of its settlement currency per 1.0 of price: its quote_volume is the trades' value in the settlement
currency (XBT), and its base_volume the multiplier-weighted contracts. Nothing here guesses: a derivative venue's
symbol no rule knows is UNKNOWN (treated as linear, size 1, and reported).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any

import polars as pl

from . import columns as c
from .errors import ConfigError
from .instrument_table import DERIVATIVE_VENUES, RULES

SPOT, LINEAR, INVERSE, QUANTO = "spot", "linear", "inverse", "quanto"
KINDS = (SPOT, LINEAR, INVERSE, QUANTO)

# Where a record came from (the `source` field).
BUILTIN, VENUE, OVERRIDE, DEFAULT, UNKNOWN = "builtin", "venue", "override", "default", "unknown"

KIND = "kind"
CONTRACT_SIZE = "contract_size"
CONTRACT_CURRENCY = "contract_currency"
BASE_ASSET = "base_asset"
QUOTE_ASSET = "quote_asset"
SOURCE = "source"

INSTRUMENT_SCHEMA: dict[str, pl.DataType] = {
    c.EXCHANGE: pl.String(),
    c.SYMBOL: pl.String(),
    KIND: pl.String(),
    CONTRACT_SIZE: pl.Float64(),
    CONTRACT_CURRENCY: pl.String(),
    BASE_ASSET: pl.String(),
    QUOTE_ASSET: pl.String(),
    SOURCE: pl.String(),
}

INSTRUMENT_DESCRIPTIONS: dict[str, str] = {
    c.EXCHANGE: "Exchange id as Tardis names it.",
    c.SYMBOL: "The exchange's own symbol.",
    KIND: "spot, linear, inverse or quanto.",
    CONTRACT_SIZE: "Value of one unit of the trade amount: base asset (spot, linear), quote currency (inverse), "
                   "settlement currency per 1.0 of price (quanto).",
    CONTRACT_CURRENCY: "Currency of contract_size.",
    BASE_ASSET: "Base asset, e.g. BTC.",
    QUOTE_ASSET: "Quote currency of the price, e.g. USD.",
    SOURCE: "override (--instrument), venue (the venue's instrument list or its cache), builtin (the built-in "
            "table), default (a spot venue: amounts in base units) or unknown (a derivative nothing describes: "
            "computed as linear with size 1 and reported).",
}


@dataclass(frozen=True)
class Instrument:
    """One instrument: its kind and the value of one unit of the trade amount (contract_size, in
    contract_currency; see the module docstring for its unit per kind)."""

    exchange: str
    symbol: str
    kind: str = SPOT
    contract_size: float = 1.0
    contract_currency: str | None = None
    base_asset: str | None = None
    quote_asset: str | None = None
    source: str = DEFAULT

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"{self.exchange} {self.symbol}: unknown instrument kind {self.kind!r}; "
                              f"choose from {', '.join(KINDS)}")
        if not self.contract_size > 0:
            raise ConfigError(f"{self.exchange} {self.symbol}: contract size must be > 0, got {self.contract_size}")

    @property
    def unknown(self) -> bool:
        """True for a derivative nothing describes (computed as linear with size 1)."""
        return self.source == UNKNOWN

    def describe(self) -> str:
        """One line, e.g. `binance-delivery BTCUSD_PERP inverse, 1 contract = 100 USD (builtin)`."""
        unit = f" {self.contract_currency}" if self.contract_currency else ""
        size = f"{self.contract_size:g}{unit}"
        what = {SPOT: "amount in base units", LINEAR: f"1 unit of amount = {size}",
                INVERSE: f"1 contract = {size}", QUANTO: f"multiplier {size} per 1.0 of price"}[self.kind]
        return f"{self.exchange} {self.symbol} {self.kind}, {what} ({self.source})"


def builtin(exchange: str, symbol: str) -> Instrument | None:
    """The built-in record of (exchange, symbol), or None when no rule covers it."""
    for venue, pattern, fields in RULES:
        if venue == exchange:
            found = re.fullmatch(pattern, symbol)
            if found:
                values: dict[str, Any] = {k: (v.format(*found.groups()) if isinstance(v, str) else v)
                                          for k, v in fields.items()}
                size = values.pop("sizes", None)
                if size is not None:  # {"BTC": 100, "*": 10}: by the base asset
                    base = values.get(BASE_ASSET)
                    values[CONTRACT_SIZE] = size[base] if base in size else size["*"]
                return Instrument(exchange, symbol, source=BUILTIN, **values)
    return None


def fallback(exchange: str, symbol: str) -> Instrument:
    """What an instrument no table describes is taken as: spot units on a spot venue, and on a derivative
    venue UNKNOWN (linear, size 1), which the run reports."""
    if exchange in DERIVATIVE_VENUES:
        return Instrument(exchange, symbol, LINEAR, 1.0, source=UNKNOWN)
    return Instrument(exchange, symbol, SPOT, 1.0, source=DEFAULT)


def parse_override(text: str, exchange: str | None = None) -> Instrument:
    """`[EXCHANGE:]SYMBOL=KIND[:SIZE[:CURRENCY]]` -> Instrument, e.g. `bitmex:XBTUSD=inverse:1:USD` or
    `BTCUSD_PERP=inverse:100` (the exchange then comes from `exchange`)."""
    target, sep, spec = text.partition("=")
    if not sep or not target.strip() or not spec.strip():
        raise ConfigError(f"--instrument {text!r}: expected [EXCHANGE:]SYMBOL=KIND[:SIZE[:CURRENCY]]")
    named, _, symbol = target.strip().rpartition(":")
    venue = named or exchange
    if not venue:
        raise ConfigError(f"--instrument {text!r}: name the exchange (EXCHANGE:SYMBOL=...) or give --exchange")
    parts = [p.strip() for p in spec.split(":")]
    kind = parts[0].lower()
    try:
        size = float(parts[1]) if len(parts) > 1 and parts[1] else 1.0
    except ValueError:
        raise ConfigError(f"--instrument {text!r}: contract size {parts[1]!r} is not a number") from None
    if kind != SPOT and len(parts) < 2:
        raise ConfigError(f"--instrument {text!r}: a {kind} instrument needs its contract size (KIND:SIZE)")
    currency = parts[2] if len(parts) > 2 and parts[2] else None
    return Instrument(venue, symbol, kind, size, currency, source=OVERRIDE)


def to_frame(instruments: Iterable[Instrument]) -> pl.DataFrame:
    """Instruments as rows of INSTRUMENT_SCHEMA (one per exchange and symbol, the last given wins)."""
    rows = list({(i.exchange, i.symbol): asdict(i) for i in instruments}.values())
    return pl.DataFrame(rows, schema=INSTRUMENT_SCHEMA) if rows else pl.DataFrame(schema=INSTRUMENT_SCHEMA)


def from_frame(frame: pl.DataFrame) -> list[Instrument]:
    """Rows of INSTRUMENT_SCHEMA -> Instrument records."""
    return [Instrument(**row) for row in frame.select(list(INSTRUMENT_SCHEMA)).iter_rows(named=True)]


def with_source(instrument: Instrument, source: str) -> Instrument:
    """The same record labelled with another source."""
    return replace(instrument, source=source)
