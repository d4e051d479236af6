"""The REST half of healing a feed gap: fetch the trades a venue's public history holds between the last trade id
seen before an outage and the first one after it, and say whether the fill is proven complete.

Binance spot and USD-M number each market's trades consecutively, so a fill is complete exactly when the fetched
ids run without a hole from `last_id + 1` to `next_id - 1`. `historicalTrades` (by `fromId`, 1000 a page) returns
one row per trade, so ticks, counts and volumes equal the uninterrupted feed's. Rate limits: HTTP 429/418 and 5xx
are retried (tenacity) after the venue's Retry-After, else with exponential backoff. OKX goes through ccxt's
`fetch_trades` on its history-trades endpoint, paged back by trade id (ccxt's rate limiter paces it); its fill is
likewise proven only by ids running without a hole.
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
    if exchange not in BINANCE_REST:
        raise ConfigError(f"no REST trade history for {exchange!r}: one of {', '.join(BINANCE_REST)}")
    if next_id <= last_id + 1:
        return Fill(exchange, symbol, schema.empty_ticks(), True, "nothing missing", 0)
    host, path = BINANCE_REST[exchange]
    url = (base_url or host).rstrip("/") + path
    headers = {"X-MBX-APIKEY": os.environ[ENV_API_KEY]} if os.environ.get(ENV_API_KEY) else {}
    own = session is None
    http = session or aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    rows: list[dict] = []
    requests = 0
    try:
        from_id = last_id + 1
        for _ in range(MAX_PAGES):
            limit = min(PAGE, next_id - from_id)
            params = {"symbol": symbol, "fromId": str(from_id), "limit": str(limit)}
            async for attempt in AsyncRetrying(stop=stop_after_attempt(attempts), wait=_wait, reraise=True,
                                               retry=retry_if_exception_type((RateLimited, aiohttp.ClientError,
                                                                              asyncio.TimeoutError))):
                with attempt:
                    requests += 1
                    page = await _get(http, url, params, headers)
            page = [r for r in page if isinstance(r, dict) and isinstance(r.get("id"), int) and r["id"] < next_id]
            rows.extend(page)
            if not page or page[-1]["id"] >= next_id - 1:
                break
            from_id = page[-1]["id"] + 1
    except RateLimited as exc:
        raise SourceError(f"{exchange} {symbol}: trade history refused after {attempts} attempts ({exc})") from exc
    finally:
        if own:
            await http.close()
    ids = sorted({r["id"] for r in rows})
    want = next_id - last_id - 1
    complete = ids == list(range(last_id + 1, next_id))
    reason = "contiguous ids" if complete else f"{want - len(ids)} of {want} trade ids missing from the history"
    return Fill(exchange, symbol, binance_ticks(rows, exchange, symbol, now).unique(c.ID, keep="first",
                                                                                    maintain_order=True),
                complete, reason, requests)


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


async def fill_okx_gap(exchange: str, symbol: str, last_id: int, next_id: int, *, now: datetime,
                       base_url: str | None = None, max_pages: int = MAX_PAGES) -> Fill:
    """Trades with ids in (last_id, next_id) of an OKX instrument (venue symbol, e.g. BTC-USDT-SWAP) through ccxt's
    `fetch_trades` on OKX's history-trades, paged back from `next_id` by trade id (100 a page, ccxt's rate
    limiter on); complete when the ids run without a hole from last_id+1 to next_id-1."""
    import ccxt.async_support as ccxt_async

    from .ccxt_markets import point_at

    ex = ccxt_async.okx({"enableRateLimit": True})
    if base_url:
        ex.urls["api"] = point_at(ex.urls["api"], base_url.rstrip("/"))
        ex.hostname = base_url.rstrip("/").split("://", 1)[-1]
    rows: dict[int, dict] = {}
    requests = 0
    try:
        await ex.load_markets()
        unified = ex.safe_symbol(symbol)
        cursor = next_id
        for _ in range(max_pages):
            params = {"method": "publicGetMarketHistoryTrades", "type": "1", "after": str(cursor)}
            try:
                requests += 1
                page = await ex.fetch_trades(unified, limit=100, params=params)
            except ccxt_async.BaseError as exc:
                raise SourceError(f"{exchange} {symbol}: trade history: {type(exc).__name__}: {exc}") from exc
            fresh = [t for t in page if str(t.get("id", "")).isdigit() and last_id < int(t["id"]) < cursor]
            rows.update((int(t["id"]), t) for t in fresh)
            if not fresh:
                break
            cursor = min(int(t["id"]) for t in fresh)
            if cursor <= last_id + 1:
                break
    finally:
        await ex.close()
    ids = sorted(rows)
    want = next_id - last_id - 1
    complete = ids == list(range(last_id + 1, next_id))
    reason = "contiguous ids" if complete else f"{want - len(ids)} of {want} trade ids missing from the history"
    trades = [rows[i] for i in ids]
    frame = pl.DataFrame({
        c.ID: [str(t["id"]) for t in trades], "_ms": [t.get("timestamp") for t in trades],
        c.SIDE: [t.get("side") or c.SIDE_UNKNOWN for t in trades], c.PRICE: [t.get("price") for t in trades],
        c.AMOUNT: [t.get("amount") for t in trades],
    }, schema={c.ID: pl.String, "_ms": pl.Int64, c.SIDE: pl.String, c.PRICE: pl.Float64, c.AMOUNT: pl.Float64})
    ticks = schema.conform(frame.with_columns(
        pl.lit(exchange).alias(c.EXCHANGE), pl.lit(symbol).alias(c.SYMBOL),
        pl.from_epoch("_ms", time_unit="ms").cast(schema.TS).alias(c.TIMESTAMP),
        pl.lit(now).cast(schema.TS).alias(c.LOCAL_TIMESTAMP)), schema.TICK_SCHEMA)
    return Fill(exchange, symbol, ticks, complete, reason, requests)
