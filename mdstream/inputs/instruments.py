"""Instrument metadata for a run: command-line overrides, then the venue's public instrument endpoint (cached on
disk), then the built-in table (contract/instrument_table.py); a derivative nothing describes is reported.

Environment: MDSTREAM_INSTRUMENTS_FETCH=off never asks a venue (offline runs: cache and built-in table only);
MDSTREAM_INSTRUMENTS_ENDPOINT=exchange=url[,exchange=url] points a venue at another URL (a mirror);
MDSTREAM_CACHE_DIR moves the cache (default ~/.cache/mdstream).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path

import polars as pl

from ..contract.instruments import (
    INVERSE,
    LINEAR,
    VENUE,
    Instrument,
    builtin,
    fallback,
    to_frame,
    with_source,
)

log = logging.getLogger(__name__)

ENV_FETCH, ENV_ENDPOINT, ENV_CACHE = "MDSTREAM_INSTRUMENTS_FETCH", "MDSTREAM_INSTRUMENTS_ENDPOINT", "MDSTREAM_CACHE_DIR"
CACHE_TTL_S = 7 * 86_400.0
TIMEOUT_S = 5.0


def parse_binance_delivery(payload: dict) -> list[Instrument]:
    """Binance COIN-M `/dapi/v1/exchangeInfo`: every symbol is inverse, `contractSize` USD (quoteAsset) each."""
    out = []
    for item in payload.get("symbols", []):
        size = item.get("contractSize")
        if item.get("symbol") and size:
            out.append(Instrument("binance-delivery", item["symbol"], INVERSE, float(size), item.get("quoteAsset"),
                                  item.get("baseAsset"), item.get("quoteAsset"), source=VENUE))
    return out


def _parse_okx(exchange: str) -> Callable[[dict], list[Instrument]]:
    """OKX `/api/v5/public/instruments`: `ctType` inverse | linear, one contract = `ctVal` `ctValCcy`."""
    def parse(payload: dict) -> list[Instrument]:
        """Instruments of one OKX instrument list."""
        out = []
        for item in payload.get("data", []):
            kind, size = item.get("ctType"), item.get("ctVal")
            if item.get("instId") and kind in (INVERSE, LINEAR) and size:
                base, _, quote = (item.get("uly") or "").partition("-")
                out.append(Instrument(exchange, item["instId"], kind, float(size), item.get("ctValCcy") or None,
                                      base or None, quote or None, source=VENUE))
        return out
    return parse


# Venues whose public instrument list says what one unit of a trade's amount is worth.
VENUE_ENDPOINTS: dict[str, tuple[str, Callable[[dict], list[Instrument]]]] = {
    "binance-delivery": ("https://dapi.binance.com/dapi/v1/exchangeInfo", parse_binance_delivery),
    "okex-swap": ("https://www.okx.com/api/v5/public/instruments?instType=SWAP", _parse_okx("okex-swap")),
    "okex-futures": ("https://www.okx.com/api/v5/public/instruments?instType=FUTURES", _parse_okx("okex-futures")),
}


def default_cache_dir() -> Path:
    """$MDSTREAM_CACHE_DIR, else ~/.cache/mdstream."""
    return Path(os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "mdstream")


def _endpoint_overrides() -> dict[str, str]:
    """exchange -> URL from MDSTREAM_INSTRUMENTS_ENDPOINT (`exchange=url[,exchange=url]`)."""
    pairs = (part.split("=", 1) for part in os.environ.get(ENV_ENDPOINT, "").split(",") if "=" in part)
    return {name.strip(): url.strip() for name, url in pairs}


class InstrumentBook:
    """Resolves (exchange, symbol) to an Instrument once per run and remembers what it had to report."""

    def __init__(self, overrides: Iterable[Instrument] = (), *, cache_dir: Path | None = None,
                 fetch: bool | None = None, timeout: float = TIMEOUT_S, now: Callable[[], float] = time.time):
        self.overrides = {(i.exchange, i.symbol): i for i in overrides}
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.fetch = fetch if fetch is not None else os.environ.get(ENV_FETCH, "").lower() not in ("0", "off", "no")
        self.timeout, self.now = timeout, now
        self.warnings: list[str] = []
        self._venue: dict[str, dict[str, Instrument]] = {}
        self._resolved: dict[tuple[str, str], Instrument] = {}
        self._learned: dict[tuple[str, str], Instrument] = {}

    def learn(self, instruments: Iterable[Instrument]) -> None:
        """Venue records a source read at run time (ccxt's markets): below overrides, above every other record."""
        self._learned.update(((i.exchange, i.symbol), i) for i in instruments)

    def resolve(self, exchange: str, symbol: str) -> Instrument:
        """The instrument of (exchange, symbol): override, learned, venue list, built-in table, or the fallback."""
        key = (exchange, symbol)
        if key not in self._resolved:
            found = (self.overrides.get(key) or self._learned.get(key) or self._venue_list(exchange).get(symbol)
                     or builtin(exchange, symbol))
            if found is None:
                found = fallback(exchange, symbol)
                if found.unknown:
                    self.warnings.append(
                        f"{exchange} {symbol}: unknown derivative instrument, volumes computed as linear with contract "
                        f"size 1; give its contract with --instrument {exchange}:{symbol}=KIND:SIZE[:CURRENCY]")
                    log.warning(self.warnings[-1])
            self._resolved[key] = found
        return self._resolved[key]

    def frame(self, pairs: Iterable[tuple[str, str]]) -> pl.DataFrame:
        """INSTRUMENT_SCHEMA rows of the given (exchange, symbol) pairs."""
        return to_frame(self.resolve(e, s) for e, s in pairs)

    @property
    def resolved(self) -> list[Instrument]:
        """Every instrument resolved so far, in order."""
        return list(self._resolved.values())

    # -- the venue's list: cache, then the endpoint ---------------------------------------------------------
    def _venue_list(self, exchange: str) -> dict[str, Instrument]:
        """symbol -> Instrument from the venue's list (fresh cache, else fetched, else stale cache); {} without one."""
        if exchange in self._venue:
            return self._venue[exchange]
        listing: dict[str, Instrument] = {}
        if exchange in VENUE_ENDPOINTS:
            cached, age = self._read_cache(exchange)
            if cached is not None and age <= CACHE_TTL_S:
                listing = cached
            elif self.fetch:
                fetched = self._download(exchange)
                listing = fetched if fetched is not None else (cached or {})
            else:
                listing = cached or {}
        self._venue[exchange] = listing
        return listing

    def _cache_path(self, exchange: str) -> Path:
        """<cache_dir>/instruments/<exchange>.json."""
        return self.cache_dir / "instruments" / f"{exchange}.json"

    def _read_cache(self, exchange: str) -> tuple[dict[str, Instrument] | None, float]:
        """(cached listing, its age in seconds), or (None, inf) when there is none or it cannot be read."""
        path = self._cache_path(exchange)
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            items = {row["symbol"]: Instrument(**row) for row in body["instruments"]}
            return items, self.now() - float(body["fetched_at"])
        except FileNotFoundError:
            return None, float("inf")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable instrument cache %s: %s", path, exc)
            return None, float("inf")

    def _download(self, exchange: str) -> dict[str, Instrument] | None:
        """Fetch and cache the venue's list; None (and a warning) when the endpoint cannot be used."""
        import urllib.error  # here: most runs never download (the cache or the built-in table answers)
        import urllib.request

        default_url, parse = VENUE_ENDPOINTS[exchange]
        url = _endpoint_overrides().get(exchange, default_url)
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:  # noqa: S310 (https or a local mirror)
                items = parse(json.loads(response.read().decode("utf-8")))
        except (OSError, ValueError, urllib.error.URLError) as exc:
            self.warnings.append(f"{exchange}: instrument list {url} unavailable ({exc}); using the cache or built-in table")
            log.warning(self.warnings[-1])
            return None
        if not items:
            self.warnings.append(f"{exchange}: instrument list {url} listed no instruments; using the built-in table")
            return None
        self._write_cache(exchange, url, items)
        return {i.symbol: i for i in items}

    def _write_cache(self, exchange: str, url: str, items: list[Instrument]) -> None:
        """Write the listing atomically (temporary file + rename); a cache that cannot be written is only logged."""
        path = self._cache_path(exchange)
        body = {"fetched_at": self.now(), "url": url, "instruments": [asdict(with_source(i, VENUE)) for i in items]}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            temporary.write_text(json.dumps(body), encoding="utf-8")
            os.replace(temporary, path)
        except OSError as exc:
            log.warning("cannot write instrument cache %s: %s", path, exc)
