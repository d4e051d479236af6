"""A local stand-in for Binance's public trade history (GET /api/v3/historicalTrades and /fapi/v1/historicalTrades,
paged by fromId, the documented row fields): rows given as a list or read at each request, optionally throttled
(429 + Retry-After) and with ids the venue does not return."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web


def history_row(message: dict) -> dict:
    """A combined-stream trade message as a historicalTrades row (id, price, qty, quoteQty, time, isBuyerMaker)."""
    data = message["data"]
    return {"symbol": data["s"].upper(), "id": int(data["t"]), "price": data["p"], "qty": data["q"],
            "quoteQty": f"{float(data['p']) * float(data['q']):.8f}", "time": int(data["T"]),
            "isBuyerMaker": bool(data["m"]), "isBestMatch": True}


class HistoryServer:
    """Serves history rows on 127.0.0.1: `rows` (a list, or a function read at each request; a row's optional
    "symbol" must match the request's); `throttle` 429s (Retry-After) before serving; `hole` ids never returned."""

    def __init__(self, rows: list[dict] | Callable[[], list[dict]], *, throttle: int = 0, retry_after: float = 0.2,
                 hole: set[int] = frozenset()):
        self.rows, self.throttle, self.retry_after, self.hole = rows, throttle, retry_after, hole
        self.requests: list[dict] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> HistoryServer:
        """Listen on a free port."""
        app = web.Application()
        app.router.add_get("/api/v3/historicalTrades", self.trades)
        app.router.add_get("/fapi/v1/historicalTrades", self.trades)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        return self

    async def trades(self, request: web.Request) -> web.Response:
        """At most `limit` (<= 1000) trades of `symbol` from id `fromId` on, in id order."""
        self.requests.append(dict(request.query))
        if self.throttle:
            self.throttle -= 1
            return web.json_response({"code": -1003, "msg": "Too many requests"}, status=429,
                                     headers={"Retry-After": str(self.retry_after)})
        symbol = request.query["symbol"].upper()
        start, limit = int(request.query["fromId"]), min(int(request.query.get("limit", 500)), 1000)
        rows = self.rows() if callable(self.rows) else self.rows
        page = sorted((r for r in rows if r.get("symbol", symbol) == symbol and r["id"] >= start
                       and r["id"] not in self.hole), key=lambda r: r["id"])
        return web.json_response([{k: v for k, v in r.items() if k != "symbol"} for r in page[:limit]])

    async def stop(self) -> None:
        """Stop serving."""
        if self.runner is not None:
            await self.runner.cleanup()
