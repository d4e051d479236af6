"""Local stand-ins for venues reached through ccxt: one aiohttp server on 127.0.0.1 answering the venue's public
markets endpoint (REST) and speaking its public trades WebSocket protocol (subscribe reply, pings, trade pushes),
shapes as the venues document them (OKX v5, Bybit v5). Trades are stamped with the wall clock when first sent;
`cut_after` closes the connection mid-feed (or, with `stall`, leaves it open and silent) and `overlap` re-sends
trades after the reconnect; with `skip` the market goes on while the feed is down: the next `skip` trades are
stamped at `rate` but never pushed (`skipped`, for a venue's trade history)."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
import uuid
from dataclasses import dataclass, replace

from aiohttp import WSMsgType, web

OKX_INSTRUMENTS = "/api/v5/public/instruments"
BYBIT_INSTRUMENTS = "/v5/market/instruments-info"


@dataclass(frozen=True)
class Trade:
    """One trade as the venue sends it (decimal text), `ts` in epoch ms (0 until sent)."""

    symbol: str
    id: str
    side: str
    price: str
    amount: str
    ts: int = 0


def make_trades(symbols: list[str], n: int, *, seed: int = 7, uuid_ids: bool = False) -> list[Trade]:
    """`n` trades round-robin over `symbols`: ids rising per symbol (or UUIDs), prices on a 0.1 grid, amounts
    with up to 3 decimals."""
    rng = random.Random(seed)
    counters = {s: itertools.count(1_000_000 + 1) for s in symbols}
    out = []
    for i in range(n):
        symbol = symbols[i % len(symbols)]
        tid = str(uuid.UUID(int=rng.getrandbits(128))) if uuid_ids else str(next(counters[symbol]))
        price = f"{60000 + rng.randint(-500, 500) / 10:.1f}" if "BTC" in symbol else f"{3000 + rng.randint(-300, 300) / 100:.2f}"
        out.append(Trade(symbol, tid, rng.choice(["buy", "sell"]), price, f"{rng.randint(1, 5000) / 1000:g}"))
    return out


def okx_spot(inst_id: str) -> dict:
    """One SPOT entry of OKX /api/v5/public/instruments."""
    base, quote = inst_id.split("-")[:2]
    return {"instType": "SPOT", "instId": inst_id, "uly": "", "instFamily": "", "baseCcy": base, "quoteCcy": quote,
            "settleCcy": "", "ctVal": "", "ctMult": "", "ctValCcy": "", "ctType": "", "optType": "", "stk": "",
            "listTime": "1606468572000", "expTime": "", "lever": "10", "tickSz": "0.1", "lotSz": "0.00000001",
            "minSz": "0.00001", "maxLmtSz": "9999999999", "maxMktSz": "1000000", "state": "live", "alias": ""}


def okx_swap(inst_id: str, ct_val: str, inverse: bool = False) -> dict:
    """One SWAP entry of OKX /api/v5/public/instruments (linear: ctVal in the base asset; inverse: in USD)."""
    base, quote = inst_id.split("-")[:2]
    return {"instType": "SWAP", "instId": inst_id, "uly": f"{base}-{quote}", "instFamily": f"{base}-{quote}",
            "baseCcy": "", "quoteCcy": "", "settleCcy": base if inverse else quote, "ctVal": ct_val, "ctMult": "1",
            "ctValCcy": quote if inverse else base, "ctType": "inverse" if inverse else "linear", "optType": "",
            "stk": "", "listTime": "1611916828000", "expTime": "", "lever": "100", "tickSz": "0.1", "lotSz": "1",
            "minSz": "1", "maxLmtSz": "100000", "maxMktSz": "20000", "state": "live", "alias": ""}


def bybit_linear(symbol: str, base: str, quote: str) -> dict:
    """One `list` entry of Bybit /v5/market/instruments-info?category=linear."""
    return {"symbol": symbol, "contractType": "LinearPerpetual", "status": "Trading", "baseCoin": base,
            "quoteCoin": quote, "launchTime": "1585526400000", "deliveryTime": "0", "deliveryFeeRate": "",
            "priceScale": "2", "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
            "priceFilter": {"minPrice": "0.10", "maxPrice": "199999.80", "tickSize": "0.10"},
            "lotSizeFilter": {"maxOrderQty": "1190.000", "minOrderQty": "0.001", "qtyStep": "0.001",
                              "postOnlyMaxOrderQty": "1190.000", "maxMktOrderQty": "500.000", "minNotionalValue": "5"},
            "unifiedMarginTrade": True, "fundingInterval": 480, "settleCoin": quote, "copyTrading": "both",
            "upperFundingRate": "0.00375", "lowerFundingRate": "-0.00375"}


def bybit_spot(symbol: str, base: str, quote: str) -> dict:
    """One `list` entry of Bybit /v5/market/instruments-info?category=spot."""
    return {"symbol": symbol, "baseCoin": base, "quoteCoin": quote, "innovation": "0", "status": "Trading",
            "marginTrading": "both", "lotSizeFilter": {"basePrecision": "0.000001", "quotePrecision": "0.00000001",
                                                       "minOrderQty": "0.000048", "maxOrderQty": "71.73956243",
                                                       "minOrderAmt": "1", "maxOrderAmt": "2000000"},
            "priceFilter": {"tickSize": "0.01"}}


class VenueServer:
    """A venue on 127.0.0.1: markets over REST, trades over WebSocket from a shared position in `trades`."""

    venue = ""

    def __init__(self, trades: list[Trade], *, rate: float = 200.0, batch: int = 3, cut_after: int | None = None,
                 overlap: int = 0, stall: bool = False, resend_on_connect: int = 0, skip: int = 0):
        self.trades, self.rate, self.batch = list(trades), rate, batch
        self.cut_after, self.overlap, self.stall, self.skip = cut_after, overlap, stall, skip
        # a new connection first gets this many trades again (as venues re-send recent trades): a message lost on
        # a connection the client dropped (its ping timed out under load) is then re-sent, not lost by the stand-in
        self.resend_on_connect = resend_on_connect
        self.pos = 0
        self.sent: dict[int, Trade] = {}  # index -> the trade as first sent (stamped)
        self.pushed = 0  # trade records pushed, re-sends included
        self.skipped: dict[int, Trade] = {}  # index -> a trade of the outage, stamped, never pushed
        self.skipping = False  # the outage's trades are being stamped: no connection is fed meanwhile
        self._skipper: asyncio.Future | None = None
        self.connections = 0
        self.unknown: list[str] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The base URL to give the source (--url)."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> VenueServer:
        """Serve on a free port."""
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._dispatch)
        app.router.add_route("POST", "/{tail:.*}", self._post)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        """Close every connection and the listener."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        """WebSocket upgrades go to the feed, GETs to the markets."""
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._feed(request)
        body = self.rest(request.path, dict(request.query))
        if body is None:
            self.unknown.append(request.path_qs)
            return web.json_response({"code": "404", "msg": f"no such path {request.path}"}, status=404)
        return web.json_response(body)

    def rest(self, path: str, query: dict) -> dict | None:
        """The JSON body of a REST request, or None for a path this venue does not serve."""
        raise NotImplementedError

    async def _post(self, request: web.Request) -> web.StreamResponse:
        """A POST: 404 unless the venue answers POSTs (override)."""
        self.unknown.append(f"POST {request.path_qs}")
        return web.json_response({"code": "404", "msg": f"no such path {request.path}"}, status=404)

    def greeting(self) -> list[dict]:
        """Messages the venue sends as a connection opens (none unless overridden)."""
        return []

    def on_connect(self) -> None:
        """A new connection: per-connection counters start again (override)."""

    def answers(self, message: dict) -> tuple[list[str], list[dict]]:
        """(venue symbols subscribed, reply messages) of a client message: `subscribed`'s one reply, unless a
        venue answers with several (override)."""
        names, reply = self.subscribed(message)
        return names, [] if reply is None else [reply]

    def subscribed(self, message: dict) -> tuple[list[str], dict | None]:
        """(venue symbols, reply) of a client message that subscribes to trades; ([], reply) for other ones."""
        raise NotImplementedError

    def push(self, trades: list[Trade]) -> dict:
        """The trades message carrying `trades` (one symbol)."""
        raise NotImplementedError

    async def _feed(self, request: web.Request) -> web.WebSocketResponse:
        """Reply to subscriptions and pings; push the subscribed symbols' trades from the shared position."""
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections += 1
        self.on_connect()
        for message in self.greeting():
            await ws.send_str(json.dumps(message))
        symbols: set[str] = set()
        pusher: asyncio.Task | None = None
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                if msg.data == "ping":  # OKX's text ping
                    await ws.send_str("pong")
                    continue
                names, replies = self.answers(json.loads(msg.data))
                for reply in replies:
                    await ws.send_str(json.dumps(reply))
                symbols.update(names)
                if names and pusher is None:
                    if self.connections > 1:
                        self.pos = max(0, self.pos - self.resend_on_connect)
                    pusher = asyncio.ensure_future(self._push(ws, symbols))
        finally:
            if pusher is not None:
                pusher.cancel()
        return ws

    async def _push(self, ws: web.WebSocketResponse, symbols: set[str]) -> None:
        """Send batches of one symbol's trades at `rate` trades/s; cut the connection once at `cut_after`."""
        await asyncio.sleep(0.05)  # every subscription of the connection arrives first
        while not ws.closed:
            if self.pos >= len(self.trades) or self.skipping:
                await asyncio.sleep(0.05)
                continue
            first = self.trades[self.pos]
            group: list[Trade] = []
            while self.pos < len(self.trades) and len(group) < self.batch and self.trades[self.pos].symbol == first.symbol:
                if self.pos not in self.sent:
                    self.sent[self.pos] = self.stamp(self.trades[self.pos])
                group.append(self.sent[self.pos])
                self.pos += 1
            if first.symbol in symbols:
                await ws.send_str(json.dumps(self.push(group)))
                self.pushed += len(group)
            if self.cut_after is not None and self.pos >= self.cut_after:
                self.cut_after = None
                self.pos -= self.overlap  # these are sent again after the reconnect
                if self.stall:  # a connection that stays open and says nothing more
                    await asyncio.sleep(3600)
                if self.skip:
                    self.skipping = True
                    self._skipper = asyncio.ensure_future(self._skip(self.skip))  # held: a bare task may be collected
                await ws.close()
                return
            await asyncio.sleep(len(group) / self.rate)

    async def trade_unseen(self, count: int) -> None:
        """The market trades `count` trades at `rate` that no connection is sent (before a client connects)."""
        self.skipping = True
        await self._skip(count)

    def stamp(self, trade: Trade) -> Trade:
        """`trade` as it happens now: stamped with the wall clock in epoch ms (a venue timing finer overrides)."""
        return replace(trade, ts=int(time.time() * 1000))

    async def _skip(self, count: int) -> None:
        """The market goes on while the feed is down: stamp the next `count` trades at `rate`, push none."""
        try:
            for _ in range(min(count, len(self.trades) - self.pos)):
                self.skipped[self.pos] = self.stamp(self.trades[self.pos])
                self.pos += 1
                await asyncio.sleep(1 / self.rate)
        finally:
            self.skipping = False


class OkxServer(VenueServer):
    """OKX v5: GET /api/v5/public/instruments?instType=..., WebSocket channel `trades` by instId."""

    venue = "okx"

    def __init__(self, trades: list[Trade], instruments: list[dict], **kw):
        super().__init__(trades, **kw)
        self.instruments = instruments
        self.history: list[Trade] = []  # trades /api/v5/market/history-trades holds (stamped)

    def rest(self, path: str, query: dict) -> dict | None:
        """Instruments of the asked instType (empty lists for the others); the public time; the trade history
        (type=1: paged by trade id, the `limit` newest trades with ids below `after`, newest first)."""
        if path == "/api/v5/market/history-trades":
            after, limit = int(query.get("after") or 10**18), min(int(query.get("limit") or 100), 100)
            older = sorted((t for t in self.history if t.symbol == query.get("instId") and int(t.id) < after),
                           key=lambda t: -int(t.id))[:limit]
            return {"code": "0", "msg": "", "data": [{"instId": t.symbol, "side": t.side, "sz": t.amount,
                                                       "px": t.price, "source": "0", "tradeId": t.id,
                                                       "ts": str(t.ts)} for t in older]}
        if path == OKX_INSTRUMENTS:
            data = [i for i in self.instruments if i["instType"] == query.get("instType")]
            return {"code": "0", "msg": "", "data": data}
        if path == "/api/v5/public/time":
            return {"code": "0", "msg": "", "data": [{"ts": str(int(time.time() * 1000))}]}
        return None

    def subscribed(self, message: dict) -> tuple[list[str], dict | None]:
        """{"op":"subscribe","args":[{"channel":"trades","instId":...}]} -> one event reply per argument."""
        if message.get("op") != "subscribe":
            return [], None
        args = message.get("args", [])
        names = [a["instId"] for a in args if a.get("channel") == "trades"]
        return names, {"event": "subscribe", "arg": args[0] if args else {}, "connId": "a4d3ae55"}

    def push(self, trades: list[Trade]) -> dict:
        """A `trades` push: {"arg": {...}, "data": [{instId, tradeId, px, sz, side, ts, count}]}."""
        inst = trades[0].symbol
        return {"arg": {"channel": "trades", "instId": inst},
                "data": [{"instId": inst, "tradeId": t.id, "px": t.price, "sz": t.amount, "side": t.side,
                          "ts": str(t.ts), "count": "1", "source": "0"} for t in trades]}


class BybitServer(VenueServer):
    """Bybit v5: GET /v5/market/instruments-info?category=..., WebSocket topic publicTrade.<symbol>."""

    venue = "bybit"

    def __init__(self, trades: list[Trade], instruments: dict[str, list[dict]], **kw):
        super().__init__(trades, **kw)
        self.instruments = instruments

    def rest(self, path: str, query: dict) -> dict | None:
        """Instruments of the asked category (empty lists for the others); the server time."""
        if path == BYBIT_INSTRUMENTS:
            category = query.get("category", "")
            return {"retCode": 0, "retMsg": "OK", "result": {"category": category, "nextPageCursor": "",
                                                               "list": self.instruments.get(category, [])},
                    "retExtInfo": {}, "time": int(time.time() * 1000)}
        if path == "/v5/market/time":
            now = int(time.time() * 1000)
            return {"retCode": 0, "retMsg": "OK", "result": {"timeSecond": str(now // 1000),
                                                               "timeNano": str(now * 1_000_000)}, "time": now}
        return None

    def subscribed(self, message: dict) -> tuple[list[str], dict | None]:
        """{"op":"subscribe","args":["publicTrade.BTCUSDT"]} -> a success reply; {"op":"ping"} -> pong."""
        op = message.get("op")
        reply = {"success": True, "ret_msg": "pong" if op == "ping" else "", "conn_id": "cbd4bc1d",
                 "req_id": message.get("req_id", ""), "op": op}
        if op != "subscribe":
            return [], reply
        return [a.split(".", 1)[1] for a in message.get("args", []) if a.startswith("publicTrade.")], reply

    def push(self, trades: list[Trade]) -> dict:
        """A publicTrade snapshot: {"topic", "type", "ts", "data": [{T, s, S, v, p, L, i, BT}]}."""
        symbol = trades[0].symbol
        return {"topic": f"publicTrade.{symbol}", "type": "snapshot", "ts": int(time.time() * 1000),
                "data": [{"T": t.ts, "s": symbol, "S": t.side.capitalize(), "v": t.amount, "p": t.price,
                          "L": "PlusTick", "i": t.id, "BT": False} for t in trades]}
