"""Venues through ccxt: exchange names, pointing an exchange at another host, symbols, labels and instruments."""

from __future__ import annotations

import re
from typing import Any

from ..contract.errors import ConfigError
from ..contract.instruments import INVERSE, LINEAR, SPOT, VENUE, Instrument
from .ccxt_venue_rules import accepted_forms, contract_size, venue_symbol

# --exchange accepts a ccxt id or a Tardis exchange id; a Tardis id also narrows the market types.
ALIASES: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "okex": ("okx", ("spot",)), "okex-swap": ("okx", ("swap",)), "okex-futures": ("okx", ("future",)),
    "okex-options": ("okx", ("option",)), "bybit-spot": ("bybit", ("spot",)),
    "bybit-options": ("bybit", ("option",)),
}
# Tardis exchange ids by ccxt id and market type (a str: one label for every type); others keep ccxt's id.
LABELS: dict[str, dict[str, str] | str] = {
    "okx": {"spot": "okex", "swap": "okex-swap", "future": "okex-futures", "option": "okex-options"},
    "bybit": {"spot": "bybit-spot", "swap": "bybit", "future": "bybit", "option": "bybit-options"},
    "coinbase": "coinbase", "kraken": "kraken", "deribit": "deribit", "hyperliquid": "hyperliquid",
}
VENUES = ("okx", "bybit", "coinbase", "kraken", "deribit", "hyperliquid")
# A venue id shared by several markets (Bybit's BTCUSDT: spot and the linear swap) means the first of these types,
# as Tardis' `bybit` means its derivatives; the unified symbol (BTC/USDT) or a Tardis id (bybit-spot) picks another.
PREFERENCE = ("swap", "future", "spot", "option")
_HOST = re.compile(r"^(https?|wss?)://[^/]+")


def venue_of(name: str) -> tuple[str, tuple[str, ...] | None]:
    """(ccxt id, market types allowed or None for any) of an --exchange value."""
    key = name.strip().lower()
    return ALIASES.get(key, (key, None))


def point_at(urls: Any, base: str) -> Any:
    """ccxt's `urls['api']` tree with every URL's scheme and host replaced by `base` (http://host:port): REST calls
    go to base, WebSocket ones to ws://host:port, each keeping its path (a local stand-in or a mirror)."""
    if isinstance(urls, dict):
        return {k: point_at(v, base) for k, v in urls.items()}
    if isinstance(urls, str) and _HOST.match(urls):
        scheme = _HOST.match(urls).group(1)  # type: ignore[union-attr]
        host = base.split("://", 1)[-1].rstrip("/")
        target = ("wss" if base.startswith("https") else "ws") if scheme.startswith("ws") else base.split("://")[0]
        return _HOST.sub(f"{target}://{host}", urls)
    return urls


def aim(ex: Any, base_url: str | None) -> Any:
    """A ccxt exchange with every REST and WebSocket endpoint sent to `base_url` (paths kept), when given."""
    if base_url:
        base = base_url.rstrip("/")
        ex.urls["api"] = point_at(ex.urls["api"], base)
        ex.hostname = base.split("://", 1)[-1]
    return ex


def label_of(venue: str, market: dict) -> str:
    """The Tardis exchange id of a ccxt market (okex-swap for an OKX swap), else ccxt's id."""
    labels = LABELS.get(venue, venue)
    return labels if isinstance(labels, str) else labels.get(market.get("type") or "", venue)


def find_market(markets: dict[str, dict], symbol: str, types: tuple[str, ...] | None, venue: str = "") -> dict:
    """The market of `symbol` written in ccxt's unified form (BTC/USDT:USDT) or the venue's (BTC-USDT-SWAP; see
    venue_symbol), within `types`; raises ConfigError naming close matches when none fits."""
    allowed = [m for m in markets.values() if types is None or m.get("type") in types]
    for m in allowed:
        if m.get("symbol") == symbol:
            return m
    by_id = [m for m in allowed if symbol.upper() in {form.upper() for form in accepted_forms(venue, m)}]
    if by_id:
        return min(by_id, key=lambda m: PREFERENCE.index(m["type"]) if m.get("type") in PREFERENCE else 99)
    near = sorted({venue_symbol(venue, m) for m in allowed if symbol.upper().replace("/", "").replace("-", "")[:3]
                   in venue_symbol(venue, m).upper()})[:8]
    hint = f"; close: {', '.join(near)}" if near else ""
    raise ConfigError(f"unknown symbol {symbol!r} on this venue{hint}")


def instrument_of(label: str, market: dict, venue: str = "") -> Instrument:
    """The instrument of a ccxt market under the venue's symbol: kind from spot/linear/inverse, one unit of
    amount = contractSize (see contract_size) of the base asset (linear) or of the quote currency (inverse)."""
    base, quote, symbol = market.get("base"), market.get("quote"), venue_symbol(venue, market)
    if market.get("spot") or not market.get("contract"):
        return Instrument(label, symbol, SPOT, 1.0, base, base, quote, source=VENUE)
    size = contract_size(venue, market)
    if market.get("inverse"):
        return Instrument(label, symbol, INVERSE, size, quote, base, quote, source=VENUE)
    return Instrument(label, symbol, LINEAR, size, base, base, quote, source=VENUE)
