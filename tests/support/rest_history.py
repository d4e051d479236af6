"""A local stand-in for Binance's public trade history (GET /api/v3/historicalTrades and /fapi/v1/historicalTrades,
paged by fromId, the documented row fields), serving the trades a WebSocket stand-in sent or skipped."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web


def history_row(message: dict) -> dict:
    """A combined-stream trade message as a historicalTrades row (id, price, qty, quoteQty, time, isBuyerMaker)."""
    data = message["data"]
    return {"id": int(data["t"]), "price": data["p"], "qty": data["q"],
            "quoteQty": f"{float(data['p']) * float(data['q']):.8f}", "time": int(data["T"]),
            "isBuyerMaker": bool(data["m"]), "isBestMatch": True}


class HistoryServer:
    """Serves `messages()` (read at each request) as trade history on 127.0.0.1; counts the requests."""

    def __init__(self, messages: Callable[[], list[dict]]):
        self.messages = messages
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
        symbol = request.query["symbol"].upper()
        start, limit = int(request.query["fromId"]), min(int(request.query.get("limit", 500)), 1000)
        rows = sorted((history_row(m) for m in self.messages() if m["data"]["s"].upper() == symbol
                       and int(m["data"]["t"]) >= start), key=lambda r: r["id"])
        return web.json_response(rows[:limit])

    async def stop(self) -> None:
        """Stop serving."""
        if self.runner is not None:
            await self.runner.cleanup()
