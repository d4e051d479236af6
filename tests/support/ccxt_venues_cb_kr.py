"""Local stand-ins for Coinbase (Advanced Trade) and Kraken (spot) reached through ccxt, on the base of
support.ccxt_venues: the REST calls ccxt's load_markets makes and each venue's public trades WebSocket, shapes as
the venues document them. A Kraken connection opens with a status message and a subscription is acknowledged
per symbol (the base's greeting and answers hooks); Kraken times its trades to the microsecond, numbers each
pair's trades (trade_id) and serves their history (GET /0/public/Trades, by time) from every trade sent or skipped
in an outage."""

from __future__ import annotations

import itertools
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from support.ccxt_venues import Trade, VenueServer, make_trades

__all__ = ["KRAKEN_SPOT", "KRAKEN_V2", "CoinbaseServer", "KrakenServer", "Trade", "coinbase_product", "kraken_pair",
           "kraken_trades", "make_trades"]

COINBASE_PRODUCTS = "/api/v3/brokerage/market/products"
KRAKEN_PAIRS = "/0/public/AssetPairs"


def rfc3339(ms: int) -> str:
    """Epoch ms as the venues write trade times: RFC 3339, microseconds, Z."""
    return rfc3339_us(ms * 1000)


def rfc3339_us(us: int) -> str:
    """Epoch µs as RFC 3339 with microseconds and Z (exact: no float on the way)."""
    return (datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def coinbase_product(product_id: str, price: str, base_name: str) -> dict:
    """One entry of Coinbase's public GET /api/v3/brokerage/market/products (a SPOT product)."""
    base, quote = product_id.split("-")
    return {"product_id": product_id, "price": price, "price_percentage_change_24h": "1.2", "volume_24h": "9876.5",
            "volume_percentage_change_24h": "-3.4", "base_increment": "0.00000001", "quote_increment": "0.01",
            "quote_min_size": "1", "quote_max_size": "150000000", "base_min_size": "0.00000001",
            "base_max_size": "3400", "base_name": base_name, "quote_name": "US Dollar", "watched": False,
            "is_disabled": False, "new": False, "status": "online", "cancel_only": False, "limit_only": False,
            "post_only": False, "trading_disabled": False, "auction_mode": False, "product_type": "SPOT",
            "quote_currency_id": quote, "base_currency_id": base, "fcm_trading_session_details": None,
            "mid_market_price": "", "alias": "", "alias_to": [], "base_display_symbol": base,
            "quote_display_symbol": quote, "view_only": False, "price_increment": "0.01",
            "display_name": product_id, "product_venue": "CBE"}


class CoinbaseServer(VenueServer):
    """Coinbase Advanced Trade: ccxt's load_markets reads GET /v2/currencies, /v2/currencies/crypto,
    /v2/exchange-rates and /api/v3/brokerage/market/products (spot, then FUTURE and PERPETUAL); the WebSocket
    channel `market_trades` by product_id, a `subscriptions` reply, a snapshot then updates, one sequence_num per
    connection."""

    venue = "coinbase"

    def __init__(self, trades: list[Trade], products: list[dict], **kw):
        super().__init__(trades, **kw)
        self.products = products
        self._sequence = itertools.count()
        self._snapshot_sent: set[str] = set()

    def rest(self, path: str, query: dict) -> dict | None:
        """Currencies (fiat, crypto), exchange rates and the public products (futures: none)."""
        bases = sorted({p["base_currency_id"] for p in self.products})
        if path == "/v2/currencies":
            return {"data": [{"id": "USD", "name": "US Dollar", "min_size": "0.01"},
                             {"id": "EUR", "name": "Euro", "min_size": "0.01"}]}
        if path == "/v2/currencies/crypto":
            return {"data": [{"asset_id": f"00000000-0000-0000-0000-{i:012d}", "code": b, "name": b, "color": "#0052FF",
                              "sort_index": i, "exponent": 8, "type": "crypto", "address_regex": "^.+$"}
                             for i, b in enumerate(bases)]}
        if path == "/v2/exchange-rates":
            rates = {p["base_currency_id"]: f"{1 / float(p['price']):.10f}" for p in self.products}
            return {"data": {"currency": "USD", "rates": {"USD": "1.0", "EUR": "0.92", **rates}}}
        if path == COINBASE_PRODUCTS:
            spot = query.get("product_type", "SPOT") == "SPOT"
            products = self.products if spot else []
            return {"products": products, "num_products": len(products)}
        return None

    def on_connect(self) -> None:
        """sequence_num counts from 0 on each connection, each product's first trades come as a snapshot."""
        self._sequence = itertools.count()
        self._snapshot_sent = set()

    def _envelope(self, channel: str, events: list[dict]) -> dict:
        """The frame every Coinbase message has: channel, client_id, timestamp, sequence_num, events."""
        return {"channel": channel, "client_id": "", "timestamp": rfc3339(int(time.time() * 1000)),
                "sequence_num": next(self._sequence), "events": events}

    def answers(self, message: dict) -> tuple[list[str], list[dict]]:
        """{"type":"subscribe","product_ids":[...],"channel":"market_trades"} -> a `subscriptions` message."""
        if message.get("type") != "subscribe" or message.get("channel") != "market_trades":
            return [], []
        names = list(message.get("product_ids", []))
        return names, [self._envelope("subscriptions", [{"subscriptions": {"market_trades": names}}])]

    def push(self, trades: list[Trade]) -> dict:
        """A market_trades message: events [{type: snapshot|update, trades: [{trade_id, product_id, price, size,
        side, time}]}], side in capitals and the maker's, as Coinbase reports matches (a trade's `side` here is
        its aggressor's, what ticks must carry)."""
        product = trades[0].symbol
        kind = "update" if product in self._snapshot_sent else "snapshot"
        self._snapshot_sent.add(product)
        return self._envelope("market_trades", [{"type": kind, "trades": [
            {"trade_id": t.id, "product_id": product, "price": t.price, "size": t.amount,
             "side": {"buy": "SELL", "sell": "BUY"}.get(t.side, t.side.upper()),
             "time": rfc3339(t.ts)} for t in trades]}])


def kraken_pair(wsname: str, base: str, quote: str, pair_decimals: int, ordermin: str) -> tuple[str, dict]:
    """(pair id, entry) of Kraken's GET /0/public/AssetPairs: `base`/`quote` are Kraken's asset ids (XXBT,
    ZUSD), the pair id their concatenation, altname and wsname from the asset altnames (XBTUSD, XBT/USD)."""
    alt_base, alt_quote = wsname.split("/")
    fees = [[0, 0.4], [10000, 0.35], [50000, 0.24], [100000, 0.22], [250000, 0.2], [500000, 0.18]]
    makers = [[0, 0.25], [10000, 0.2], [50000, 0.14], [100000, 0.12], [250000, 0.1], [500000, 0.08]]
    return base + quote, {
        "altname": alt_base + alt_quote, "wsname": wsname, "aclass_base": "currency", "base": base,
        "aclass_quote": "currency", "quote": quote, "lot": "unit", "cost_decimals": 5, "pair_decimals": pair_decimals,
        "lot_decimals": 8, "lot_multiplier": 1, "leverage_buy": [2, 3, 4, 5], "leverage_sell": [2, 3, 4, 5],
        "fees": fees, "fees_maker": makers, "fee_volume_currency": "ZUSD", "margin_call": 80, "margin_stop": 40,
        "ordermin": ordermin, "costmin": "0.5", "tick_size": str(10 ** -pair_decimals), "status": "online",
        "long_position_limit": 250, "short_position_limit": 200}


# Kraken's spot assets as GET /0/public/Assets lists them (id -> altname, decimals)
KRAKEN_ASSETS = {"XXBT": ("XBT", 10), "XETH": ("ETH", 10), "ZUSD": ("USD", 4)}
KRAKEN_SPOT = dict([kraken_pair("XBT/USD", "XXBT", "ZUSD", 1, "0.00005"),
                    kraken_pair("ETH/USD", "XETH", "ZUSD", 2, "0.002")])
KRAKEN_V2 = {"XBT/USD": "BTC/USD", "ETH/USD": "ETH/USD"}  # the pair's wsname -> the v2 WebSocket's symbol
KRAKEN_TRADES = "/0/public/Trades"
PAGE = 1000  # the most trades /0/public/Trades gives at once (and its default)


def kraken_trades(n: int, *, seed: int = 7) -> list[Trade]:
    """`n` trades alternating XBT/USD and ETH/USD (BTC prices for XBT), trade ids counting each pair's trades."""
    return [replace(t, symbol=t.symbol.replace("BTC", "XBT")) for t in make_trades(["BTC/USD", "ETH/USD"], n,
                                                                                     seed=seed)]


class KrakenServer(VenueServer):
    """Kraken spot: ccxt's load_markets reads GET /0/public/Assets and /0/public/AssetPairs; trades come over the
    WebSocket v2 (/v2): a `status` message on connect, `trade` subscriptions acknowledged per symbol, a snapshot then
    updates with numeric price/qty, an integer trade_id and RFC 3339 times to the microsecond, `ping` answered with
    `pong`. Trades carry the pair's wsname (XBT/USD); v2 writes symbols its own way (BTC/USD), given in `v2_names`.
    GET /0/public/Trades serves every trade sent or skipped but those whose trade_id is in `hole`."""

    venue = "kraken"

    def __init__(self, trades: list[Trade], pairs: dict[str, dict] | None = None,
                 v2_names: dict[str, str] | None = None, **kw):
        super().__init__(trades, **kw)
        self.pairs = KRAKEN_SPOT if pairs is None else pairs
        self.v2_names = KRAKEN_V2 if v2_names is None else v2_names
        self.wsnames = {v: k for k, v in self.v2_names.items()}
        self._snapshot_sent: set[str] = set()
        self.micros: dict[tuple[str, str], int] = {}  # (pair, trade id) -> its time in epoch µs
        self._latest_us: dict[str, int] = {}
        self.hole: set[int] = set()  # trade_ids the history leaves out (a venue's incomplete history)
        self.history_requests: list[dict] = []

    def stamp(self, trade: Trade) -> Trade:
        """The trade's time in µs, rising with each pair's trade_id; `ts` is it cut to the ms (as ccxt reads it)."""
        us = max(time.time_ns() // 1000, self._latest_us.get(trade.symbol, 0) + 1)
        self.micros[(trade.symbol, trade.id)] = self._latest_us[trade.symbol] = us
        return replace(trade, ts=us // 1000)

    def at_us(self, t: Trade) -> int:
        """A trade's time in epoch µs (a trade never stamped here: its ms `ts`)."""
        return self.micros.get((t.symbol, t.id), t.ts * 1000)

    def recent_trades(self, query: dict) -> dict:
        """GET /0/public/Trades?pair=&since=&count=: the pair's trades after `since` (a UNIX time, nanoseconds when
        it has more than 12 digits, else seconds; none: the latest), oldest first, at most `count` (default and
        most 1000), as [price, volume, time (float seconds), b/s, m/l, misc, trade_id] under the pair's id, and
        `last`, the ns time of the last one (the next page's since)."""
        self.history_requests.append(query)
        by_name = {k: k for k in self.pairs} | {p["altname"]: k for k, p in self.pairs.items()}
        pair = by_name.get(str(query.get("pair")))
        if pair is None:
            return {"error": ["EQuery:Unknown asset pair"]}
        name, decimals = self.pairs[pair]["wsname"], self.pairs[pair]["pair_decimals"]
        count = min(int(query.get("count") or PAGE), PAGE)
        held = sorted((t for t in [*self.sent.values(), *self.skipped.values()]
                       if t.symbol == name and int(t.id) not in self.hole), key=lambda t: int(t.id))
        since = query.get("since")
        if since is None:
            page = held[-count:]
        else:
            after = int(since) if len(str(since)) > 12 else int(since) * 10**9
            page = [t for t in held if self.at_us(t) * 1000 > after][:count]
        rows = [[f"{float(t.price):.{decimals}f}", f"{float(t.amount):.8f}", self.at_us(t) / 1e6,
                 t.side[0], "m" if int(t.id) % 3 else "l", "", int(t.id)] for t in page]
        last = self.at_us(page[-1]) * 1000 if page else int(since or 0)
        return {"error": [], "result": {pair: rows, "last": str(last)}}

    def rest(self, path: str, query: dict) -> dict | None:
        """Assets, asset pairs and the trade history, in Kraken's {"error": [], "result": {...}} envelope."""
        if path == "/0/public/Assets":
            return {"error": [], "result": {
                asset: {"aclass": "currency", "altname": alt, "decimals": decimals, "display_decimals": 5,
                        "collateral_value": 1.0, "status": "enabled"}
                for asset, (alt, decimals) in KRAKEN_ASSETS.items()}}
        if path == KRAKEN_PAIRS:
            return {"error": [], "result": self.pairs}
        if path == KRAKEN_TRADES:
            return self.recent_trades(query)
        return None

    def on_connect(self) -> None:
        """Each symbol's first trades on a connection come as its snapshot."""
        self._snapshot_sent = set()

    def greeting(self) -> list[dict]:
        """The `status` update Kraken's v2 sends as a connection opens."""
        return [{"channel": "status", "type": "update", "data": [
            {"version": "2.0.10", "system": "online", "api_version": "v2", "connection_id": 12393906104898154338}]}]

    def answers(self, message: dict) -> tuple[list[str], list[dict]]:
        """{"method":"subscribe","params":{"channel":"trade","symbol":[...]},"req_id":n} -> one ack per symbol;
        {"method":"ping","req_id":n} -> pong."""
        now = rfc3339(int(time.time() * 1000))
        method, req_id = message.get("method"), message.get("req_id")
        if method == "ping":
            return [], [{"method": "pong", "req_id": req_id, "time_in": now, "time_out": now}]
        params = message.get("params") or {}
        if method != "subscribe" or params.get("channel") != "trade":
            return [], []
        symbols = list(params.get("symbol", []))
        acks = [{"method": "subscribe", "result": {"channel": "trade", "snapshot": params.get("snapshot", True),
                                                   "symbol": s}, "success": True, "time_in": now, "time_out": now,
                 "req_id": req_id} for s in symbols]
        return [self.wsnames.get(s, s) for s in symbols], acks

    def push(self, trades: list[Trade]) -> dict:
        """A `trade` message: {"channel": "trade", "type": snapshot|update, "data": [{symbol, side, price, qty,
        ord_type, trade_id, timestamp}]}, price and qty JSON numbers."""
        symbol = self.v2_names[trades[0].symbol]
        kind = "update" if symbol in self._snapshot_sent else "snapshot"
        self._snapshot_sent.add(symbol)
        return {"channel": "trade", "type": kind, "data": [
            {"symbol": symbol, "side": t.side, "price": float(t.price), "qty": float(t.amount),
             "ord_type": "market" if int(t.id) % 3 else "limit", "trade_id": int(t.id),
             "timestamp": rfc3339_us(self.at_us(t))} for t in trades]}
