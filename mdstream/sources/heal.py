"""The REST half of healing a feed gap: fetch the trades a venue's public history holds between the last trade id
seen before an outage and the first one after it, and say whether the fill is proven complete.

Binance spot and USD-M number each market's trades consecutively, so a fill is complete exactly when the fetched
ids run without a hole from `last_id + 1` to `next_id - 1`. `historicalTrades` (by `fromId`, 1000 a page) returns
one row per trade, so ticks, counts and volumes equal the uninterrupted feed's. Rate limits: HTTP 429/418 and 5xx
are retried (tenacity) after the venue's Retry-After, else with exponential backoff. The venues reached through
ccxt are filled in heal_ccxt (OKX, Deribit) and heal_kraken (Kraken spot).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from datetime import datetime

import aiohttp
import polars as pl
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from ..contract import columns as c
from ..contract import schema
from ..contract.errors import ConfigError, SourceError

# Public REST hosts and paths of the trade history, by exchange label.
BINANCE_REST = {"binance": ("https://api.binance.com", "/api/v3/historicalTrades"),
                "binance-futures": ("https://fapi.binance.com", "/fapi/v1/historicalTrades")}
PAGE = 1000  # the venue's largest page
MAX_PAGES = 200  # 200k trades: a longer hole is left to a backfill, not a live fill
ENV_API_KEY = "MDSTREAM_BINANCE_API_KEY"  # USD-M historicalTrades asks for a (read-only) key
RETRY_STATUS = (418, 429, 500, 502, 503, 504)


@dataclass(frozen=True)
class Fill:
    """The trades fetched for one symbol's gap and whether they are provably all of them (`reason` says why not)."""

    exchange: str
    symbol: str
    ticks: pl.DataFrame
    complete: bool
    reason: str
    requests: int


class RateLimited(Exception):
    """The venue asked us to wait `wait` seconds (429/418 with Retry-After) or failed transiently (5xx)."""

    def __init__(self, status: int, wait: float | None):
        super().__init__(f"HTTP {status}, retry after {wait}s")
        self.status, self.wait = status, wait


def _wait(state) -> float:
    """Seconds before the next attempt: the venue's Retry-After, else 0.5 * 2**n capped at 30 s."""
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, RateLimited) and exc.wait is not None:
        return exc.wait
    return wait_exponential(multiplier=0.5, max=30)(state)


def binance_ticks(rows: list[dict], exchange: str, symbol: str, fetched_at: datetime) -> pl.DataFrame:
    """historicalTrades rows -> ticks: id, time (ms), price and qty as sent; isBuyerMaker true = a sell aggressor."""
    frame = pl.DataFrame({
        "_id": [r.get("id") for r in rows], "_ms": [r.get("time") for r in rows],
        c.PRICE: [r.get("price") for r in rows], c.AMOUNT: [r.get("qty") for r in rows],
        "_maker": [r.get("isBuyerMaker") for r in rows],
    }, schema={"_id": pl.Int64, "_ms": pl.Int64, c.PRICE: pl.String, c.AMOUNT: pl.String, "_maker": pl.Boolean})
    return schema.conform(frame.select(
        pl.lit(exchange).alias(c.EXCHANGE), pl.lit(symbol).alias(c.SYMBOL),
        pl.from_epoch("_ms", time_unit="ms").cast(schema.TS).alias(c.TIMESTAMP),
        pl.lit(fetched_at).cast(schema.TS).alias(c.LOCAL_TIMESTAMP),
        pl.col("_id").cast(pl.String).alias(c.ID),
        pl.when(pl.col("_maker")).then(pl.lit(c.SIDE_SELL)).otherwise(pl.lit(c.SIDE_BUY)).alias(c.SIDE),
        pl.col(c.PRICE).cast(pl.Float64), pl.col(c.AMOUNT).cast(pl.Float64),
    ), schema.TICK_SCHEMA)


async def fill_binance_gap(exchange: str, symbol: str, last_id: int, next_id: int, *, now: datetime,
                           base_url: str | None = None, attempts: int = 6,
                           session: aiohttp.ClientSession | None = None) -> Fill:
    """Trades with ids in (last_id, next_id) of a Binance spot or USD-M symbol from historicalTrades, paged by
    fromId; complete when their ids are exactly last_id+1 .. next_id-1. Raises SourceError when the venue keeps
    refusing past `attempts` tries per page."""
    if next_id <= last_id + 1:
        _binance_url(exchange, base_url)
        return Fill(exchange, symbol, schema.empty_ticks(), True, "nothing missing", 0)
    async with _History(exchange, symbol, base_url, attempts, session) as history:
        rows = await history.forward(last_id + 1, next_id)
    complete, reason = proof(sorted({r["id"] for r in rows}), last_id, next_id)
    return Fill(exchange, symbol, _unique(binance_ticks(rows, exchange, symbol, now)), complete, reason,
                history.requests)


async def fill_binance_since(exchange: str, symbol: str, next_id: int, since: datetime, *, now: datetime,
                             base_url: str | None = None, attempts: int = 6,
                             session: aiohttp.ClientSession | None = None) -> Fill:
    """Trades of a Binance spot or USD-M symbol from `since` up to id `next_id` (exclusive): pages of
    historicalTrades read backwards by fromId until one holds a trade before `since` (ids and times rise together
    on Binance); complete when that trade was found and the ids from it to next_id-1 run without a hole."""
    since_ms = int(since.timestamp() * 1000)
    async with _History(exchange, symbol, base_url, attempts, session) as history:
        rows: list[dict] = []
        upto = next_id
        while upto > 0 and history.requests < MAX_PAGES:
            start = max(0, upto - PAGE)
            page = await history.forward(start, upto)
            rows = page + rows
            if not page or page[0]["time"] < since_ms or start == 0:
                break
            upto = start
    complete, reason = reaches_back([r["id"] for r in rows], [r["time"] for r in rows], next_id, since_ms, 0)
    kept = [r for r in rows if r["time"] >= since_ms]
    return Fill(exchange, symbol, _unique(binance_ticks(kept, exchange, symbol, now)), complete, reason,
                history.requests)


def reaches_back(numbers: list[int], times_ms: list[int], nxt: int, since_ms: int, origin: int,
                 what: str = "trade ids", named: str = "ids") -> tuple[bool, str]:
    """(complete, reason) of a fill read backwards from trade number `nxt` (exclusive) to `since_ms`: complete when
    its oldest trade is before since_ms (or is the market's first, number `origin`) and the numbers run from it to
    nxt-1 without a hole (numbers and times rise together)."""
    reached = bool(numbers) and (times_ms[0] < since_ms or numbers[0] == origin)
    if not reached:
        return False, "the history does not reach back to the window start"
    if numbers != list(range(numbers[0], nxt)):
        return False, f"{what} missing from the history"
    return True, f"contiguous {named} since the window start"


def proof(numbers: list[int], last: int, nxt: int, what: str = "trade ids", named: str = "ids") -> tuple[bool, str]:
    """(complete, reason) of a fill: complete exactly when the sorted distinct trade `numbers` are last+1 .. nxt-1;
    else the reason counts the missing ones."""
    want = nxt - last - 1
    if numbers == list(range(last + 1, nxt)):
        return True, f"contiguous {named}"
    return False, f"{want - len(numbers)} of {want} {what} missing from the history"


def _unique(ticks: pl.DataFrame) -> pl.DataFrame:
    """One row per trade id (a page boundary may repeat one), in the order fetched."""
    return ticks.unique(c.ID, keep="first", maintain_order=True)


def _binance_url(exchange: str, base_url: str | None) -> str:
    """The historicalTrades URL of a Binance market label (ConfigError for another venue)."""
    if exchange not in BINANCE_REST:
        raise ConfigError(f"no REST trade history for {exchange!r}: one of {', '.join(BINANCE_REST)}")
    host, path = BINANCE_REST[exchange]
    return (base_url or host).rstrip("/") + path


class _History:
    """One symbol's historicalTrades over one HTTP session (its own, unless given), retried on 429/418/5xx."""

    def __init__(self, exchange: str, symbol: str, base_url: str | None, attempts: int,
                 session: aiohttp.ClientSession | None):
        self.exchange, self.symbol, self.attempts = exchange, symbol, attempts
        self.url = _binance_url(exchange, base_url)
        self.headers = {"X-MBX-APIKEY": os.environ[ENV_API_KEY]} if os.environ.get(ENV_API_KEY) else {}
        self.own = session is None
        self.http = session
        self.requests = 0

    async def __aenter__(self) -> _History:
        if self.http is None:
            self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.own and self.http is not None:
            await self.http.close()

    async def forward(self, from_id: int, upto: int) -> list[dict]:
        """Rows with ids in [from_id, upto), in id order, paged by fromId (at most MAX_PAGES requests in all)."""
        rows: list[dict] = []
        while from_id < upto and self.requests < MAX_PAGES:
            params = {"symbol": self.symbol, "fromId": str(from_id), "limit": str(min(PAGE, upto - from_id))}
            try:
                async for attempt in AsyncRetrying(stop=stop_after_attempt(self.attempts), wait=_wait, reraise=True,
                                                   retry=retry_if_exception_type((RateLimited, aiohttp.ClientError,
                                                                                  asyncio.TimeoutError))):
                    with attempt:
                        self.requests += 1
                        assert self.http is not None
                        page = await _get(self.http, self.url, params, self.headers)
            except RateLimited as exc:
                raise SourceError(f"{self.exchange} {self.symbol}: trade history refused after {self.attempts} "
                                  f"attempts ({exc})") from exc
            page = [r for r in page if isinstance(r, dict) and isinstance(r.get("id"), int)
                    and isinstance(r.get("time"), int) and from_id <= r["id"] < upto]
            rows.extend(page)
            if not page or page[-1]["id"] >= upto - 1:
                break
            from_id = page[-1]["id"] + 1
        return rows


async def _get(http: aiohttp.ClientSession, url: str, params: dict, headers: dict) -> list:
    """One page of JSON; RateLimited for 429/418 (with Retry-After seconds) and 5xx; SourceError for other errors."""
    async with http.get(url, params=params, headers=headers) as resp:
        if resp.status in RETRY_STATUS:
            after = resp.headers.get("Retry-After")
            raise RateLimited(resp.status, float(after) if after and after.replace(".", "", 1).isdigit() else None)
        if resp.status != 200:
            raise SourceError(f"{url}: HTTP {resp.status}: {(await resp.text())[:200]}")
        body = await resp.json(content_type=None)
        if not isinstance(body, list):
            raise SourceError(f"{url}: expected a list of trades, got {type(body).__name__}")
        return body
