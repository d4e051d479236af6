"""The REST half of healing a Kraken spot outage: the pair's public trade history read through ccxt's async client
(its rate limiter paces the requests), a fill proven complete only when the trades' `trade_id`s run without a hole.

Kraken's WebSocket v2 numbers each pair's trades (`trade_id`, "a sequence number, unique per book"), so a jump in
it names exactly what an outage missed. `GET /0/public/Trades?pair=&since=&count=` answers
{"error": [], "result": {"<pair id>": [[price, volume, time, "b"/"s", ordertype, misc, trade_id], ...],
"last": "<ns>"}}: up to `count` (at most 1000) trades after `since`, a UNIX time (nanoseconds, as `last` writes it),
oldest first; `last` is the `since` of the next page. The history is paged by time, not by id, so a fill starts at
the time of the last trade seen before the jump; a start fill reads from shortly before the start window up to
the feed's first trade_id.

Times: the REST gives float seconds, the WebSocket the same instant as RFC 3339 text to the microsecond, which ccxt
cuts to the millisecond. A REST time is rounded to the microsecond first (a double holds today's epoch seconds to
well under one), then cut to the millisecond the same way: a healed trade has the timestamp the feed would have
given it, so healed windows equal those of an uninterrupted feed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ..contract import columns as c
from ..contract import schema
from ..contract.errors import SourceError
from .ccxt_clients import release
from .ccxt_markets import find_market
from .heal import MAX_PAGES, PAGE, Fill, proof, reaches_back
from .heal_ccxt import _client, trade_ticks

SIDES = {"b": c.SIDE_BUY, "s": c.SIDE_SELL}  # the taker's side as the REST history writes it
_NS_PER_MS = 1_000_000
# How far before the start window a start fill first reads, then again while no trade before it was found: a
# trade before the window proves the fill reaches its start (a minute on a busy pair, longer on a quiet one).
LOOKBACK_MS = (60_000, 3_600_000, 86_400_000)


def kraken_ms(seconds: Any) -> int | None:
    """Epoch ms of a REST trade time in float seconds, as the WebSocket path gets it: rounded to the µs, then cut
    to the ms (float arithmetic alone can land just below a millisecond boundary); None when it is no time."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float, str)):
        return None
    try:
        return round(Decimal(repr(seconds) if isinstance(seconds, float) else seconds).scaleb(6)) // 1000
    except (InvalidOperation, ValueError, OverflowError):
        return None


def _number(text: Any) -> float | None:
    """A price or volume (decimal text or a JSON number) as the float the WebSocket path holds, else None."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if value == value else None


def _trade_id(row: Any) -> int | None:
    """The trade_id closing a REST trade row, or None for a row that is not one."""
    if not isinstance(row, list) or len(row) < 7:
        return None
    tid = row[6]
    return tid if isinstance(tid, int) and not isinstance(tid, bool) else None


def _usable(row: list) -> bool:
    """Whether a trade row has a time, a price and a volume (one that has not is missing from the fill)."""
    return kraken_ms(row[2]) is not None and _number(row[0]) is not None and _number(row[1]) is not None


async def _page(ex: Any, exchange: str, symbol: str, pair: str, since_ns: int) -> tuple[list, int | None]:
    """(trade rows, `last` as ns) of one /0/public/Trades request for `pair` after `since_ns`; SourceError when the
    venue refuses or answers something else."""
    import ccxt.async_support as ccxt_async

    try:
        body = await ex.public_get_trades({"pair": pair, "since": str(since_ns), "count": PAGE})
    except ccxt_async.BaseError as exc:
        raise SourceError(f"{exchange} {symbol}: trade history: {type(exc).__name__}: {exc}") from exc
    result = body.get("result") if isinstance(body, dict) else None
    if not isinstance(result, dict) or (body.get("error") or []):
        raise SourceError(f"{exchange} {symbol}: trade history: {str(body)[:200]}")
    rows = result.get(pair)
    if rows is None:  # keyed by the pair's own id whatever name asked for it
        rows = next((v for k, v in result.items() if k != "last" and isinstance(v, list)), [])
    last = str(result.get("last"))
    return (rows if isinstance(rows, list) else []), (int(last) if last.isdigit() else None)


async def fill_kraken_gap(exchange: str, symbol: str, last_id: int, next_id: int, *, now: datetime, since_ms: int,
                          base_url: str | None = None, max_pages: int = MAX_PAGES) -> Fill:
    """Trades with trade_id in (last_id, next_id) of a Kraken spot pair (`symbol` as ticks carry it, XBT/USD) from
    /0/public/Trades through ccxt (rate limiter on), pages of PAGE read forward from `since_ms` (epoch ms at or
    before the trade last_id), each from the previous page's `last`, until trade_id next_id-1 or later is seen or a
    page is empty; complete exactly when the trade_ids run last_id+1 .. next_id-1 without a hole."""
    if next_id <= last_id + 1:
        return Fill(exchange, symbol, schema.empty_ticks(), True, "nothing missing", 0)
    history = _History(exchange, symbol, base_url)
    try:
        rows = await history.forward(since_ms, last_id, next_id, max_pages)
    finally:
        await history.close()
    tids = sorted(rows)
    complete, reason = proof(tids, last_id, next_id, "trade_id", "trade_id")
    return Fill(exchange, symbol, _ticks(rows, tids, exchange, symbol, now), complete, reason, history.requests)


async def fill_kraken_since(exchange: str, symbol: str, first_ids: Sequence[str], at: datetime, since: datetime, *,
                            now: datetime, base_url: str | None = None, max_pages: int = MAX_PAGES) -> Fill:
    """Trades of a Kraken spot pair from `since` up to the feed's first trade (the least trade_id of `first_ids`,
    traded at `at`), exclusive: pages read forward from LOOKBACK_MS[k] before `since`, the next reach only while no
    trade before `since` was read (a quiet pair); complete when one was and the trade_ids from it run to the
    first's without a hole (trade_id and time rise together)."""
    numbers = [int(i) for i in first_ids if str(i).isdigit()]
    if not numbers:
        return Fill(exchange, symbol, schema.empty_ticks(), False, "no trade_id among the feed's first trades", 0)
    first, since_ms = min(numbers), int(since.timestamp() * 1000)
    history = _History(exchange, symbol, base_url)
    try:
        for lookback in LOOKBACK_MS:
            rows = await history.forward(since_ms - lookback, -1, first, max_pages - history.requests)
            times = {t: kraken_ms(r[2]) or 0 for t, r in rows.items()}
            if any(ms < since_ms for ms in times.values()) or history.requests >= max_pages:
                break
    finally:
        await history.close()
    tids = sorted(rows)
    complete, reason = reaches_back(tids, [times[t] for t in tids], first, since_ms, 1, "trade_id", "trade_id")
    kept = [t for t in tids if times[t] >= since_ms]
    return Fill(exchange, symbol, _ticks(rows, kept, exchange, symbol, now), complete, reason, history.requests)


def _ticks(rows: dict[int, list], tids: list[int], exchange: str, symbol: str, now: datetime):
    """Ticks of the REST rows `tids`, in that order: trade_id, time as the WebSocket path reads it, side, price,
    volume."""
    return trade_ticks([(str(t), kraken_ms(rows[t][2]), SIDES.get(rows[t][3]), _number(rows[t][0]),
                         _number(rows[t][1])) for t in tids], exchange, symbol, now)


class _History:
    """One pair's /0/public/Trades through ccxt's async Kraken client (its rate limiter on), paged forward by time."""

    def __init__(self, exchange: str, symbol: str, base_url: str | None):
        self.exchange, self.symbol = exchange, symbol
        self.ex = _client("kraken", base_url)
        self.pair: str | None = None
        self.requests = 0

    async def close(self) -> None:
        """Release the client's HTTP session."""
        await release(self.ex)

    async def forward(self, since_ms: int, lo: int, hi: int, max_pages: int) -> dict[int, list]:
        """Usable rows by trade_id in (lo, hi), read from `since_ms` (epoch ms) on, each page from the previous
        page's `last`, until trade_id hi-1 or later is seen, a page is empty or `max_pages` were asked."""
        if self.pair is None:
            await self.ex.load_markets()
            self.pair = str(find_market(self.ex.markets, self.symbol, None, "kraken")["id"])
        rows: dict[int, list] = {}
        since = since_ms * _NS_PER_MS - 1  # one ns before: a trade at since_ms is in, whether `since` is inclusive or not
        for _ in range(max(max_pages, 0)):
            self.requests += 1
            page, last = await _page(self.ex, self.exchange, self.symbol, self.pair, since)
            ids = [(tid, row) for row in page if (tid := _trade_id(row)) is not None]
            rows.update((tid, row) for tid, row in ids if lo < tid < hi and _usable(row))
            if not ids or max(tid for tid, _ in ids) >= hi - 1 or last is None or last <= since:
                break
            since = last
        return rows
