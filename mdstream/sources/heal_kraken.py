"""The REST half of healing a Kraken spot outage: the pair's public trade history read through ccxt's async client
(its rate limiter paces the requests), a fill proven complete only when the trades' `trade_id`s run without a hole.

Kraken's WebSocket v2 numbers each pair's trades (`trade_id`, "a sequence number, unique per book"), so a jump in
it names exactly what an outage missed. `GET /0/public/Trades?pair=&since=&count=` answers
{"error": [], "result": {"<pair id>": [[price, volume, time, "b"/"s", ordertype, misc, trade_id], ...],
"last": "<ns>"}}: up to `count` (at most 1000) trades after `since`, a UNIX time (nanoseconds, as `last` writes it),
oldest first; `last` is the `since` of the next page. The history is paged by time, not by id, so a fill starts at
the time of the last trade seen before the jump.

Times: the REST gives float seconds, the WebSocket the same instant as RFC 3339 text to the microsecond, which ccxt
cuts to the millisecond. A REST time is rounded to the microsecond first (a double holds today's epoch seconds to
well under one), then cut to the millisecond the same way: a healed trade has the timestamp the feed would have
given it, so healed windows equal those of an uninterrupted feed.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ..contract import columns as c
from ..contract import schema
from ..contract.errors import SourceError
from .ccxt_markets import find_market
from .heal import MAX_PAGES, PAGE, Fill, proof
from .heal_ccxt import _client, trade_ticks

SIDES = {"b": c.SIDE_BUY, "s": c.SIDE_SELL}  # the taker's side as the REST history writes it
_NS_PER_MS = 1_000_000


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
    ex = _client("kraken", base_url)
    rows: dict[int, list] = {}
    requests = 0
    since = since_ms * _NS_PER_MS - 1  # one ns before: a trade at since_ms is in, whether `since` is inclusive or not
    try:
        await ex.load_markets()
        pair = str(find_market(ex.markets, symbol, None, "kraken")["id"])
        while requests < max_pages:
            requests += 1
            page, last = await _page(ex, exchange, symbol, pair, since)
            ids = [(tid, row) for row in page if (tid := _trade_id(row)) is not None]
            rows.update((tid, row) for tid, row in ids if last_id < tid < next_id and _usable(row))
            if not ids or max(tid for tid, _ in ids) >= next_id - 1 or last is None or last <= since:
                break
            since = last
    finally:
        await ex.close()
    tids = sorted(rows)
    complete, reason = proof(tids, last_id, next_id, "trade_id", "trade_id")
    ticks = trade_ticks([(str(t), kraken_ms(r[2]), SIDES.get(r[3]), _number(r[0]), _number(r[1]))
                         for t, r in ((t, rows[t]) for t in tids)], exchange, symbol, now)
    return Fill(exchange, symbol, ticks, complete, reason, requests)
