"""Local stand-ins for Deribit and Hyperliquid as ccxt reaches them, shapes as the venues document them.

Deribit (API v2): GET /api/v2/public/get_currencies and /api/v2/public/get_instruments answer JSON-RPC envelopes;
the WebSocket /ws/api/v2 takes `public/subscribe` to `trades.{instrument}.100ms` and pushes `subscription`
notifications (prices and amounts are JSON numbers; inverse amounts are USD; `trade_seq` numbers each instrument's
trades from 1); GET /api/v2/public/get_last_trades_by_instrument answers from every trade sent or skipped by
`start_seq`/`end_seq` and `count`, and ..._and_time by `start_timestamp`/`end_timestamp`. Hyperliquid: POST /info
{"type": "spotMeta" | "spotMetaAndAssetCtxs" | "metaAndAssetCtxs" | "perpDexs"}; the WebSocket /ws takes
{"method": "subscribe", "subscription": {"type": "trades", "coin": ...}} and pushes {"channel": "trades", "data":
[WsTrade]}, with {"method": "ping"} answered by {"channel": "pong"}."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import random
import time
from dataclasses import replace

from aiohttp import web

from .ccxt_venues import Trade, VenueServer, make_trades

DERIBIT_API = "/api/v2/public/"


def _envelope(result: object) -> dict:
    """A Deribit JSON-RPC response body (HTTP GET answers carry no id)."""
    now_us = int(time.time() * 1_000_000)
    return {"jsonrpc": "2.0", "result": result, "usIn": now_us, "usOut": now_us + 60, "usDiff": 60, "testnet": False}


def deribit_currency(currency: str, long_name: str) -> dict:
    """One entry of Deribit public/get_currencies."""
    return {"currency": currency, "currency_long": long_name, "coin_type": long_name.upper(), "fee_precision": 4,
            "min_confirmations": 1, "min_withdrawal_fee": 0.0001, "withdrawal_fee": 0.0001,
            "withdrawal_priorities": [], "apr": 0.0, "in_cross_collateral_pool": True}


def deribit_perpetual(name: str, base: str, quote: str, settle: str, contract_size: float, tick: float,
                      min_amount: float, instrument_id: int) -> dict:
    """One perpetual of Deribit public/get_instruments: inverse (`reversed`, quote USD, settled in the coin, amounts
    in USD) when the settlement currency is the base, else linear (amounts in the base coin)."""
    kind = "reversed" if settle == base else "linear"
    return {"tick_size": tick, "tick_size_steps": [], "taker_commission": 0.0005, "settlement_period": "perpetual",
            "settlement_currency": settle, "quote_currency": quote, "price_index": f"{base.lower()}_{quote.lower()}",
            "min_trade_amount": min_amount, "max_liquidation_commission": 0.0075, "max_leverage": 50,
            "maker_commission": 0.0, "kind": "future", "is_active": True, "instrument_name": name,
            "instrument_id": instrument_id, "instrument_type": kind, "future_type": kind,
            "expiration_timestamp": 32503708800000, "creation_timestamp": 1534167754000, "counter_currency": quote,
            "contract_size": contract_size, "block_trade_tick_size": 0.01, "block_trade_min_trade_amount": 200000,
            "block_trade_commission": 0.00025, "base_currency": base, "state": "open"}


DERIBIT_CURRENCIES = [deribit_currency("BTC", "Bitcoin"), deribit_currency("ETH", "Ethereum"),
                      deribit_currency("USDC", "USD Coin")]
DERIBIT_INSTRUMENTS = [
    deribit_perpetual("BTC-PERPETUAL", "BTC", "USD", "BTC", 10.0, 0.5, 10.0, 124972),
    deribit_perpetual("ETH-PERPETUAL", "ETH", "USD", "ETH", 1.0, 0.05, 1.0, 124923),
    deribit_perpetual("BTC_USDC-PERPETUAL", "BTC", "USDC", "USDC", 0.001, 1.0, 0.001, 210838),
]


def deribit_trades(n: int, *, seed: int = 7) -> list[Trade]:
    """`n` trades alternating BTC-PERPETUAL and ETH-PERPETUAL as Deribit prints them: prices on the tick (0.5,
    0.05), amounts in USD in whole contracts (10 USD, 1 USD), ids numeric text for BTC and "ETH-<n>" for ETH."""
    rng = random.Random(seed)
    ids = {"BTC-PERPETUAL": itertools.count(318_000_001), "ETH-PERPETUAL": itertools.count(235_000_001)}
    out = []
    for t in make_trades(list(ids), n, seed=seed):
        number = next(ids[t.symbol])
        if t.symbol == "BTC-PERPETUAL":
            out.append(replace(t, id=str(number), price=f"{60000 + rng.randint(-1000, 1000) / 2:.1f}",
                               amount=str(10 * rng.randint(1, 500))))
        else:
            out.append(replace(t, id=f"ETH-{number}", price=f"{3000 + rng.randint(-600, 600) / 20:.2f}",
                               amount=str(rng.randint(1, 5000))))
    return out


class DeribitServer(VenueServer):
    """Deribit API v2: REST market data over HTTP GET, JSON-RPC subscriptions over the WebSocket."""

    venue = "deribit"

    def __init__(self, trades: list[Trade], instruments: list[dict] | None = None, **kw):
        super().__init__(trades, **kw)
        self.instruments = DERIBIT_INSTRUMENTS if instruments is None else instruments
        self.contract_size = {i["instrument_name"]: i["contract_size"] for i in self.instruments}
        self.inverse = {i["instrument_name"] for i in self.instruments if i["instrument_type"] == "reversed"}
        # trade_seq: the trade's place in its instrument's sequence, the same when the trade is sent again
        seqs: dict[str, itertools.count] = {}
        self.seq = {(t.symbol, t.id): next(seqs.setdefault(t.symbol, itertools.count(1))) for t in self.trades}
        self.last_price: dict[str, float] = {}
        self.hole: set[int] = set()  # trade_seq the history leaves out (a venue's incomplete history)
        self.history_requests: list[dict] = []

    def record(self, t: Trade, tick_direction: int) -> dict:
        """The public trade fields of `t` as the trades channel and the trade history carry them."""
        price, amount = float(t.price), float(t.amount)
        trade = {"trade_seq": self.seq[(t.symbol, t.id)], "trade_id": t.id, "timestamp": t.ts,
                 "tick_direction": tick_direction, "price": price, "mark_price": price, "instrument_name": t.symbol,
                 "index_price": price, "direction": t.side, "amount": amount}
        if t.symbol in self.inverse:  # amounts are USD; `contracts` says how many contracts that is
            trade["contracts"] = amount / self.contract_size[t.symbol]
        return trade

    def last_trades(self, query: dict, by: str = "seq") -> dict:
        """public/get_last_trades_by_instrument (by="seq": trade_seq in [start_seq, end_seq]) or ..._and_time
        (by="time": times in [start_timestamp, end_timestamp], epoch ms): the instrument's trades, sent or skipped,
        ascending unless sorting=desc, at most `count` (default 10, max 1000), and has_more."""
        self.history_requests.append(query)
        name, count = query.get("instrument_name"), min(int(query.get("count") or 10), 1000)
        bound = "seq" if by == "seq" else "timestamp"
        lo, hi = int(query.get(f"start_{bound}") or 0), int(query.get(f"end_{bound}") or 10**18)
        key = (lambda t: self.seq[(name, t.id)]) if by == "seq" else (lambda t: t.ts)
        held = [t for t in [*self.sent.values(), *self.skipped.values()] if t.symbol == name
                and lo <= key(t) <= hi and self.seq[(name, t.id)] not in self.hole]
        held.sort(key=lambda t: self.seq[(name, t.id)], reverse=query.get("sorting") == "desc")
        return _envelope({"trades": [self.record(t, 1) for t in held[:count]], "has_more": len(held) > count})

    def rest(self, path: str, query: dict) -> dict | None:
        """public/get_currencies; public/get_instruments (every currency unless `currency` is given, `kind` and
        `expired` filtering as documented); public/get_time; public/get_last_trades_by_instrument(_and_time)."""
        if path == DERIBIT_API + "get_currencies":
            return _envelope(DERIBIT_CURRENCIES)
        if path == DERIBIT_API + "get_instruments":
            currency, kind = query.get("currency", "any"), query.get("kind")
            if query.get("expired") == "true":
                return _envelope([])
            return _envelope([i for i in self.instruments if currency in ("any", i["base_currency"],
                                                                          i["settlement_currency"])
                              and kind in (None, i["kind"])])
        if path == DERIBIT_API + "get_time":
            return _envelope(int(time.time() * 1000))
        if path == DERIBIT_API + "get_last_trades_by_instrument":
            return self.last_trades(query)
        if path == DERIBIT_API + "get_last_trades_by_instrument_and_time":
            return self.last_trades(query, by="time")
        return None

    def subscribed(self, message: dict) -> tuple[list[str], dict | None]:
        """{"method": "public/subscribe", "params": {"channels": ["trades.BTC-PERPETUAL.100ms"]}} -> the JSON-RPC
        result listing the channels subscribed; another method is recorded (ccxt sends none) and not answered."""
        method, rid = message.get("method"), message.get("id")
        if method != "public/subscribe":
            self.unknown.append(str(method))
            return [], None
        channels = [ch for ch in message.get("params", {}).get("channels", []) if ch.startswith("trades.")]
        return [ch.split(".")[1] for ch in channels], {**_envelope(channels), "id": rid}

    def push(self, trades: list[Trade]) -> dict:
        """A `subscription` notification of channel trades.{instrument}.100ms with the public trade fields."""
        name = trades[0].symbol
        data = []
        for t in trades:
            price = float(t.price)
            last = self.last_price.get(name, price)
            self.last_price[name] = price
            data.append(self.record(t, 0 if price > last else (2 if price < last else 1)))
        return {"jsonrpc": "2.0", "method": "subscription", "params": {"channel": f"trades.{name}.100ms",
                                                                       "data": data}}


SUBSCRIPTIONS_SETTLE = 0.5  # seconds a new Hyperliquid connection waits for its subscriptions before trades flow


def hyperliquid_perp(name: str, sz_decimals: int, max_leverage: int, mark: str) -> tuple[dict, dict]:
    """(universe entry, asset context) of one perpetual of Hyperliquid's {"type": "metaAndAssetCtxs"}."""
    return ({"name": name, "szDecimals": sz_decimals, "maxLeverage": max_leverage, "marginTableId": max_leverage},
            {"funding": "0.0000125", "openInterest": "10764.48", "prevDayPx": mark, "dayNtlVlm": "9450588.2273",
             "premium": "0.00031774", "oraclePx": mark, "markPx": mark, "midPx": mark, "impactPxs": [mark, mark],
             "dayBaseVlm": "157.2"})


def hyperliquid_token(name: str, index: int, sz_decimals: int, wei_decimals: int) -> dict:
    """One entry of `tokens` in Hyperliquid's {"type": "spotMeta"} (listed in index order)."""
    return {"name": name, "szDecimals": sz_decimals, "weiDecimals": wei_decimals, "index": index,
            "tokenId": "0x" + hashlib.md5(name.encode()).hexdigest(), "isCanonical": index < 2,
            "evmContract": None, "fullName": None, "deployerTradingFeeShare": "0.0"}


HYPERLIQUID_PERPS = [hyperliquid_perp("BTC", 5, 40, "60000.0"), hyperliquid_perp("ETH", 4, 25, "3000.0")]
HYPERLIQUID_TOKENS = [hyperliquid_token("USDC", 0, 8, 8), hyperliquid_token("PURR", 1, 0, 5),
                      hyperliquid_token("HFUN", 2, 2, 8)]
# spot pairs are named "PURR/USDC" for the first ones, "@<index>" for the others
HYPERLIQUID_SPOT = [{"tokens": [1, 0], "name": "PURR/USDC", "index": 0, "isCanonical": True},
                    {"tokens": [2, 0], "name": "@1", "index": 1, "isCanonical": False}]
HYPERLIQUID_SPOT_CTXS = [{"prevDayPx": "0.2", "dayNtlVlm": "8906.0", "markPx": "0.21", "midPx": "0.2093",
                          "circulatingSupply": "597626445.6", "coin": s["name"], "totalSupply": "599999953.5",
                          "dayBaseVlm": "42000.0"} for s in HYPERLIQUID_SPOT]


def hyperliquid_trades(n: int, *, seed: int = 7) -> list[Trade]:
    """`n` trades alternating the BTC and ETH perpetuals, as Hyperliquid names them (by coin), with trade ids
    (tid) large integers in no order."""
    rng = random.Random(seed)
    tids = rng.sample(range(10**14, 10**15), n)
    return [replace(t, id=str(tid)) for t, tid in zip(make_trades(["BTC", "ETH"], n, seed=seed), tids)]


class HyperliquidServer(VenueServer):
    """Hyperliquid: POST /info by request type, WebSocket /ws with `trades` subscriptions by coin."""

    venue = "hyperliquid"

    async def _push(self, ws: web.WebSocketResponse, symbols: set[str]) -> None:
        """The base's pushes, once every coin's subscription arrived: ccxt sends one per coin, spaced by its rate
        limiter (about 50 ms apart), and the shared feed passes over the trades of a coin not yet subscribed."""
        await asyncio.sleep(SUBSCRIPTIONS_SETTLE)
        await super()._push(ws, symbols)

    def rest(self, path: str, query: dict) -> dict | None:
        """No GET endpoint: Hyperliquid's info API is POST only."""
        return None

    def info(self, request: dict) -> object | None:
        """The body of POST /info for `request` {"type": ...}, or None for a type this stand-in does not serve."""
        kind = request.get("type")
        if kind == "spotMeta":
            return {"tokens": HYPERLIQUID_TOKENS, "universe": HYPERLIQUID_SPOT}
        if kind == "spotMetaAndAssetCtxs":
            return [{"tokens": HYPERLIQUID_TOKENS, "universe": HYPERLIQUID_SPOT}, HYPERLIQUID_SPOT_CTXS]
        if kind in ("meta", "metaAndAssetCtxs") and not request.get("dex"):
            meta = {"universe": [u for u, _ in HYPERLIQUID_PERPS], "marginTables": [], "collateralToken": 0}
            return meta if kind == "meta" else [meta, [ctx for _, ctx in HYPERLIQUID_PERPS]]
        if kind == "perpDexs":
            return [None]  # the first perp dex (null) only: no builder-deployed ones
        return None

    async def _post(self, request: web.Request) -> web.StreamResponse:
        """POST /info with a JSON body; anything else is recorded and refused as the venue does (422)."""
        body = await request.json() if request.path == "/info" else {}
        answer = self.info(body) if request.path == "/info" else None
        if answer is None:
            self.unknown.append(f"POST {request.path} {body}")
            return web.Response(status=422, text="Failed to deserialize the JSON body into the target type")
        return web.json_response(answer)

    def subscribed(self, message: dict) -> tuple[list[str], dict | None]:
        """{"method": "subscribe", "subscription": {"type": "trades", "coin": "BTC"}} -> a subscriptionResponse
        echoing it; {"method": "ping"} -> {"channel": "pong"}; other messages are recorded."""
        method, subscription = message.get("method"), message.get("subscription") or {}
        if method == "ping":
            return [], {"channel": "pong"}
        if method != "subscribe" or subscription.get("type") != "trades":
            self.unknown.append(str(message))
            return [], None
        return [subscription["coin"]], {"channel": "subscriptionResponse", "data": message}

    def push(self, trades: list[Trade]) -> dict:
        """A `trades` message: [{coin, side (B buy, A sell), px, sz, time, hash, tid, users [buyer, seller]}]."""
        data = []
        for t in trades:
            digest = hashlib.sha256(t.id.encode()).hexdigest()
            data.append({"coin": t.symbol, "side": "B" if t.side == "buy" else "A", "px": t.price, "sz": t.amount,
                         "time": t.ts, "hash": "0x" + digest, "tid": int(t.id),
                         "users": ["0x" + digest[:40], "0x" + digest[24:]]})
        return {"channel": "trades", "data": data}
