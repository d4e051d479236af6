"""The REST half of healing for venues reached through ccxt: their trade history fetched by ccxt's async client
(its rate limiter paces the requests), a fill proven complete only when the venue's trade numbers run without a hole.

OKX: history-trades through `fetch_trades`, paged back by trade id. Deribit: `public/get_last_trades_by_instrument`
paged by `trade_seq`, the trade's number within its instrument (consecutive, so a jump in it says exactly what an
outage missed), forward over an outage and backwards from the feed's first trades at the start. Kraken, whose
history is paged by time, is filled in heal_kraken.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import polars as pl

from ..contract import columns as c
from ..contract import schema
from ..contract.errors import SourceError
from .ccxt_clients import release
from .ccxt_markets import aim
from .heal import MAX_PAGES, PAGE, Fill, proof, reaches_back

Row = tuple[str, Any, Any, Any, Any]  # (trade id text, trade time in epoch ms, side, price, amount)


def _client(venue: str, base_url: str | None) -> Any:
    """ccxt's async client of `venue`, rate limiter on, every endpoint pointed at `base_url` when given."""
    import ccxt.async_support as ccxt_async

    return aim(getattr(ccxt_async, venue)({"enableRateLimit": True}), base_url)


def trade_ticks(rows: Sequence[Row], exchange: str, symbol: str, now: datetime) -> pl.DataFrame:
    """Ticks of `rows` as the ccxt source builds them: the venue's symbol, time from epoch ms, side buy/sell (else
    unknown), price and amount as the venue reports them, received `now`."""
    frame = pl.DataFrame({
        c.ID: [r[0] for r in rows], "_ms": [r[1] for r in rows],
        c.SIDE: [r[2] if r[2] in (c.SIDE_BUY, c.SIDE_SELL) else c.SIDE_UNKNOWN for r in rows],
        c.PRICE: [r[3] for r in rows], c.AMOUNT: [r[4] for r in rows],
    }, schema={c.ID: pl.String, "_ms": pl.Int64, c.SIDE: pl.String, c.PRICE: pl.Float64, c.AMOUNT: pl.Float64},
        strict=False)
    return schema.conform(frame.with_columns(
        pl.lit(exchange).alias(c.EXCHANGE), pl.lit(symbol).alias(c.SYMBOL),
        pl.from_epoch("_ms", time_unit="ms").cast(schema.TS).alias(c.TIMESTAMP),
        pl.lit(now).cast(schema.TS).alias(c.LOCAL_TIMESTAMP)), schema.TICK_SCHEMA)


async def fill_okx_gap(exchange: str, symbol: str, last_id: int, next_id: int, *, now: datetime,
                       base_url: str | None = None, max_pages: int = MAX_PAGES) -> Fill:
    """Trades with ids in (last_id, next_id) of an OKX instrument (venue symbol, e.g. BTC-USDT-SWAP) through ccxt's
    `fetch_trades` on OKX's history-trades, paged back from `next_id` by trade id (100 a page, ccxt's rate
    limiter on); complete when the ids run without a hole from last_id+1 to next_id-1."""
    import ccxt.async_support as ccxt_async

    ex = _client("okx", base_url)
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
        await release(ex)
    ids = sorted(rows)
    complete, reason = proof(ids, last_id, next_id)
    trades = [rows[i] for i in ids]
    ticks = trade_ticks([(str(t["id"]), t.get("timestamp"), t.get("side"), t.get("price"), t.get("amount"))
                         for t in trades], exchange, symbol, now)
    return Fill(exchange, symbol, ticks, complete, reason, requests)


async def fill_deribit_gap(exchange: str, symbol: str, last_seq: int, next_seq: int, *, now: datetime,
                           base_url: str | None = None, max_pages: int = MAX_PAGES) -> Fill:
    """Trades with trade_seq in (last_seq, next_seq) of a Deribit instrument (e.g. BTC-PERPETUAL) from
    public/get_last_trades_by_instrument through ccxt (rate limiter on), pages of PAGE from start_seq to end_seq in
    ascending order; complete exactly when their trade_seq run last_seq+1 .. next_seq-1 without a hole."""
    if next_seq <= last_seq + 1:
        return Fill(exchange, symbol, schema.empty_ticks(), True, "nothing missing", 0)
    history = _Deribit(exchange, symbol, base_url)
    rows: dict[int, dict] = {}
    start = last_seq + 1
    try:
        while start < next_seq and history.requests < max_pages:
            page, more = await history.seqs(start, next_seq - 1)
            rows.update((t["trade_seq"], t) for t in page)
            if not page or not more:
                break
            start = max(t["trade_seq"] for t in page) + 1
    finally:
        await history.close()
    seqs = sorted(rows)
    complete, reason = proof(seqs, last_seq, next_seq, "trade_seq", "trade_seq")
    return Fill(exchange, symbol, _deribit_ticks([rows[s] for s in seqs], exchange, symbol, now), complete, reason,
                history.requests)


async def fill_deribit_since(exchange: str, symbol: str, first_ids: Sequence[str], at: datetime, since: datetime,
                             *, now: datetime, base_url: str | None = None, max_pages: int = MAX_PAGES) -> Fill:
    """Trades of a Deribit instrument from `since` up to the feed's first trades (`first_ids`, traded at `at`),
    exclusive: their trade_seq looked up in public/get_last_trades_by_instrument_and_time at that millisecond, then
    pages of PAGE read backwards by trade_seq until one holds a trade before `since` (trade_seq and time rise
    together); complete when that trade was found and the trade_seq from it run to the first's without a hole."""
    at_ms, since_ms = int(at.timestamp() * 1000), int(since.timestamp() * 1000)
    history = _Deribit(exchange, symbol, base_url)
    rows: list[dict] = []
    try:
        found, _ = await history.times(at_ms, at_ms)
        firsts = [t["trade_seq"] for t in found if str(t.get("trade_id")) in set(first_ids)]
        if not firsts:
            return Fill(exchange, symbol, schema.empty_ticks(), False,
                        "the feed's first trades are not in the history", history.requests)
        upto = next_seq = min(firsts)
        while upto > 1 and history.requests < max_pages:
            start = max(1, upto - PAGE)
            page, _ = await history.seqs(start, upto - 1)
            rows = sorted(page, key=lambda t: t["trade_seq"]) + rows
            if not page or page[0]["timestamp"] < since_ms or start == 1:
                break
            upto = start
    finally:
        await history.close()
    complete, reason = reaches_back([t["trade_seq"] for t in rows], [t["timestamp"] for t in rows], next_seq,
                                    since_ms, 1, "trade_seq", "trade_seq")
    kept = [t for t in rows if t["timestamp"] >= since_ms]
    return Fill(exchange, symbol, _deribit_ticks(kept, exchange, symbol, now), complete, reason, history.requests)


def _deribit_ticks(trades: list[dict], exchange: str, symbol: str, now: datetime) -> pl.DataFrame:
    """Ticks of Deribit history rows: trade_id, time in ms, direction, price, amount (USD or coin)."""
    return trade_ticks([(str(t.get("trade_id")), t.get("timestamp"), t.get("direction"), t.get("price"),
                         t.get("amount")) for t in trades], exchange, symbol, now)


class _Deribit:
    """One instrument's public trade history through ccxt's async Deribit client (its rate limiter on)."""

    def __init__(self, exchange: str, symbol: str, base_url: str | None):
        self.exchange, self.symbol = exchange, symbol
        self.ex = _client("deribit", base_url)
        self.requests = 0

    async def close(self) -> None:
        """Release the client's HTTP session."""
        await release(self.ex)

    async def seqs(self, start: int, end: int) -> tuple[list[dict], bool]:
        """(the instrument's trades with trade_seq in [start, end], ascending, at most PAGE; whether more exist)."""
        return await self._page(self.ex.public_get_get_last_trades_by_instrument,
                                {"start_seq": start, "end_seq": end}, lambda t: start <= t["trade_seq"] <= end)

    async def times(self, start_ms: int, end_ms: int) -> tuple[list[dict], bool]:
        """(the instrument's trades with times in [start_ms, end_ms] (epoch ms), ascending, at most PAGE; more?)."""
        return await self._page(self.ex.public_get_get_last_trades_by_instrument_and_time,
                                {"start_timestamp": start_ms, "end_timestamp": end_ms},
                                lambda t: start_ms <= t["timestamp"] <= end_ms)

    async def _page(self, call: Any, bounds: dict, within: Any) -> tuple[list[dict], bool]:
        """One checked page: rows of this instrument with an integer trade_seq and timestamp, inside the bounds."""
        import ccxt.async_support as ccxt_async

        params = {"instrument_name": self.symbol, **bounds, "count": PAGE, "include_old": "true", "sorting": "asc"}
        try:
            self.requests += 1
            body = await call(params)
        except ccxt_async.BaseError as exc:
            raise SourceError(f"{self.exchange} {self.symbol}: trade history: {type(exc).__name__}: {exc}") from exc
        result = body.get("result") if isinstance(body, dict) else None
        if not isinstance(result, dict) or not isinstance(result.get("trades"), list):
            raise SourceError(f"{self.exchange} {self.symbol}: trade history: no trades in {str(body)[:200]}")
        page = [t for t in result["trades"] if isinstance(t, dict) and isinstance(t.get("trade_seq"), int)
                and isinstance(t.get("timestamp"), int) and t.get("instrument_name", self.symbol) == self.symbol
                and within(t)]
        return page, bool(result.get("has_more"))
