"""A catalogue of damaged exchange messages: each kind turns a valid Binance combined-stream trade message into
what a broken feed, proxy or recorder might deliver, with the outcome the project must give it.

Outcomes: TRADE (still a valid trade: it must be accepted, once), QUARANTINE (a counted quarantine row),
IGNORED (a non-trade message counted by its type). Used by the fuzz tests and the fault-injecting server.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from dataclasses import dataclass

import orjson

TRADE, QUARANTINE, IGNORED = "trade", "quarantine", "ignored"
Frame = str | bytes


def trade_message(symbol: str, trade_id: int, price: float, qty: str, ms: int, *, futures: bool = False,
                  buyer_maker: bool = False) -> dict:
    """A Binance `<symbol>@trade` combined-stream message (futures ones carry X=MARKET, spot ones M)."""
    data = {"e": "trade", "E": ms + 1, "T": ms, "s": symbol, "t": trade_id, "p": f"{price:.2f}", "q": qty,
            "m": buyer_maker}
    data.update({"X": "MARKET"} if futures else {"M": True})
    return {"stream": f"{symbol.lower()}@trade", "data": data}


def dumps(message) -> str:
    """Compact JSON text of a message (the standard library for what orjson refuses: ints past 64 bits, NaN)."""
    try:
        return orjson.dumps(message).decode()
    except TypeError:
        return json.dumps(message, separators=(",", ":"))


def _set(key: str, value) -> Callable[[dict, random.Random], str]:
    """A damage that sets data[key] = value."""
    def apply(message: dict, rng: random.Random) -> str:
        out = copy.deepcopy(message)
        out["data"][key] = value
        return dumps(out)
    return apply


def _drop(key: str, where: str = "data") -> Callable[[dict, random.Random], str]:
    """A damage that removes a field of the payload (or of the envelope when where == "")."""
    def apply(message: dict, rng: random.Random) -> str:
        out = copy.deepcopy(message)
        (out["data"] if where else out).pop(key, None)
        return dumps(out)
    return apply


def _text(fn: Callable[[str], str]) -> Callable[[dict, random.Random], str]:
    """A damage applied to the compact JSON text."""
    return lambda message, rng: fn(dumps(message))


def _truncate(message: dict, rng: random.Random) -> str:
    text = dumps(message)
    return text[: rng.randrange(1, len(text) - 1)]


def _scale(key: str, factor: float) -> Callable[[dict, random.Random], str]:
    """A damage multiplying a numeric text field by `factor` (a plausible-looking but absurd value)."""
    def apply(message: dict, rng: random.Random) -> str:
        out = copy.deepcopy(message)
        out["data"][key] = f"{float(out['data'][key]) * factor:.8f}"
        return dumps(out)
    return apply


def _time(fn: Callable[[int], int]) -> Callable[[dict, random.Random], str]:
    """A damage rewriting the trade time T."""
    def apply(message: dict, rng: random.Random) -> str:
        out = copy.deepcopy(message)
        out["data"]["T"] = fn(out["data"]["T"])
        return dumps(out)
    return apply


def _new_id(fn: Callable[[int], int]) -> Callable[[dict, random.Random], str]:
    """A still-valid trade under another id."""
    def apply(message: dict, rng: random.Random) -> str:
        out = copy.deepcopy(message)
        out["data"]["t"] = fn(out["data"]["t"])
        return dumps(out)
    return apply


def _symbol(value: str, *, stream: bool = True) -> Callable[[dict, random.Random], str]:
    """A damage setting the symbol (and the stream name to match when `stream`)."""
    def apply(message: dict, rng: random.Random) -> str:
        out = copy.deepcopy(message)
        out["data"]["s"] = value
        if stream:
            out["stream"] = f"{value.lower()}@trade"
        return dumps(out)
    return apply


def _dup_key(key: str, second) -> Callable[[dict, random.Random], str]:
    """The payload with `key` repeated: its real value first, `second` after (JSON readers differ on which wins)."""
    def apply(message: dict, rng: random.Random) -> str:
        text = dumps(message)
        return text[:-2] + f',"{key}":{json.dumps(second)}}}}}'
    return apply


def _other(payload: dict, stream_suffix: str | None) -> Callable[[dict, random.Random], str]:
    """A non-trade message of the same symbol (or an envelope-less reply when stream_suffix is None)."""
    def apply(message: dict, rng: random.Random) -> str:
        if stream_suffix is None:
            return dumps(payload)
        symbol = message["data"]["s"]
        return dumps({"stream": f"{symbol.lower()}@{stream_suffix}", "data": {**payload, "s": symbol}})
    return apply


def _pretty(message: dict, rng: random.Random) -> str:
    return json.dumps(message, indent=rng.choice([1, 2, 4]), separators=(" , ", " : "))


def _reordered(message: dict, rng: random.Random) -> str:
    items = list(message["data"].items())
    rng.shuffle(items)
    return dumps({"data": dict(items), "stream": message["stream"]})


def _escaped(message: dict, rng: random.Random) -> str:
    text = json.dumps(message, ensure_ascii=True)
    symbol = message["data"]["s"]
    return text.replace(f'"s": "{symbol}"', '"s": "' + "".join(f"\\u{ord(ch):04x}" for ch in symbol) + '"')


@dataclass(frozen=True)
class Damage:
    """One kind of damage: its name, how it is made from a valid trade message, and the required outcome."""

    name: str
    make: Callable[[dict, random.Random], Frame]
    expect: str


KINDS: list[Damage] = [
    # still valid trades, whatever they look like
    Damage("pretty-printed with spaces", _pretty, TRADE),
    Damage("keys reordered", _reordered, TRADE),
    Damage("unicode escapes", _escaped, TRADE),
    Damage("surrounding whitespace", _text(lambda t: f"  \n{t}\t "), TRADE),
    Damage("extra fields", _set("zz", {"nested": [1, 2, {"a": None}]}), TRADE),
    Damage("no stream envelope name", _drop("stream", ""), TRADE),
    Damage("price as a JSON number", lambda m, r: _set("p", float(m["data"]["p"]))(m, r), TRADE),
    Damage("quantity as a JSON number", lambda m, r: _set("q", float(m["data"]["q"]))(m, r), TRADE),
    Damage("trade id as text", lambda m, r: _set("t", str(m["data"]["t"]))(m, r), TRADE),
    Damage("trade time as text", lambda m, r: _set("T", str(m["data"]["T"]))(m, r), TRADE),
    Damage("negative trade id", _new_id(lambda t: -t), TRADE),
    Damage("huge trade id", _new_id(lambda t: 2**62 + t), TRADE),
    Damage("lower-case symbol", lambda m, r: _set("s", m["data"]["s"].lower())(m, r), TRADE),
    Damage("binary frame", lambda m, r: dumps(m).encode(), TRADE),
    Damage("long extra field", _set("zz", "x" * 200_000), TRADE),
    # broken JSON
    Damage("truncated", _truncate, QUARANTINE),
    Damage("empty", lambda m, r: "", QUARANTINE),
    Damage("whitespace only", lambda m, r: "   ", QUARANTINE),
    Damage("not JSON", lambda m, r: "hello", QUARANTINE),
    Damage("trailing garbage", _text(lambda t: t + "xyz"), QUARANTINE),
    Damage("two messages in one", _text(lambda t: t + t), QUARANTINE),
    Damage("byte-order mark", _text(lambda t: "\ufeff" + t), QUARANTINE),
    Damage("raw newline in a string", _text(lambda t: t.replace('"trade"', '"tr\nade"', 1)), QUARANTINE),
    Damage("NaN literal", _text(lambda t: t.replace('"p":"', '"p":NaN,"_p":"', 1)), QUARANTINE),
    Damage("deeply nested", _text(lambda t: t[:-2] + ',"x":' + "[" * 3000 + "]" * 3000 + "}}"), QUARANTINE),
    Damage("binary garbage", lambda m, r: bytes(r.randrange(256) for _ in range(40)), QUARANTINE),
    Damage("invalid UTF-8", lambda m, r: b"\xff\xfe" + dumps(m).encode()[2:], QUARANTINE),
    Damage("top-level array", lambda m, r: dumps([m]), QUARANTINE),
    Damage("top-level string", lambda m, r: '"trade"', QUARANTINE),
    Damage("top-level number", lambda m, r: "12345", QUARANTINE),
    Damage("null", lambda m, r: "null", QUARANTINE),
    Damage("empty object", lambda m, r: "{}", QUARANTINE),
    Damage("payload is an array", lambda m, r: dumps({"stream": m["stream"], "data": [m["data"]]}), QUARANTINE),
    Damage("payload is text", lambda m, r: dumps({"stream": m["stream"], "data": "trade"}), QUARANTINE),
    Damage("payload missing", _drop("data", ""), QUARANTINE),
    Damage("payload null", lambda m, r: dumps({"stream": m["stream"], "data": None}), QUARANTINE),
    # symbols
    Damage("symbol missing", _drop("s"), QUARANTINE),
    Damage("symbol null", _set("s", None), QUARANTINE),
    Damage("symbol empty", _symbol("", stream=False), QUARANTINE),
    Damage("symbol a number", _set("s", 12345), QUARANTINE),
    Damage("symbol an object", _set("s", {"x": 1}), QUARANTINE),
    Damage("symbol an array", _set("s", ["BTCUSDT"]), QUARANTINE),
    Damage("symbol emoji", _symbol("BTC\U0001f680USDT"), QUARANTINE),
    Damage("symbol with newline", _symbol("BTC\nUSDT"), QUARANTINE),
    Damage("symbol 10k characters", _symbol("B" * 10_000), QUARANTINE),
    Damage("symbol not subscribed", _symbol("DOGEUSDT"), QUARANTINE),
    Damage("stream of another symbol", lambda m, r: dumps({**m, "stream": "zzzusdt@trade"}), QUARANTINE),
    Damage("lone surrogate in symbol", _text(lambda t: t.replace('"s":"', '"s":"\\ud800', 1)), QUARANTINE),
    # ids and times
    Damage("trade id missing", _drop("t"), QUARANTINE),
    Damage("trade id fractional", _set("t", 1.5), QUARANTINE),
    Damage("trade id beyond 64 bits", _set("t", 2**70), QUARANTINE),
    Damage("trade id boolean", _set("t", True), QUARANTINE),
    Damage("trade id an object", _set("t", {"id": 1}), QUARANTINE),
    Damage("trade time missing", _drop("T"), QUARANTINE),
    Damage("trade time in seconds", _time(lambda t: t // 1000), QUARANTINE),
    Damage("trade time in microseconds", _time(lambda t: t * 1000), QUARANTINE),
    Damage("trade time in nanoseconds", _time(lambda t: t * 1_000_000), QUARANTINE),
    Damage("trade time in 2100", _time(lambda t: 4_102_444_800_000 + t % 86_400_000), QUARANTINE),
    Damage("trade time negative", _time(lambda t: -t), QUARANTINE),
    Damage("trade time fractional", _time(lambda t: t + 0.5), QUARANTINE),
    Damage("trade time not a number", _set("T", "soon"), QUARANTINE),
    # prices and sizes
    Damage("price missing", _drop("p"), QUARANTINE),
    Damage("price not a number", _set("p", "abc"), QUARANTINE),
    Damage("price zero", _set("p", "0"), QUARANTINE),
    Damage("price negative", _set("p", "-61000.5"), QUARANTINE),
    Damage("price NaN", _set("p", "NaN"), QUARANTINE),
    Damage("price infinite", _set("p", "inf"), QUARANTINE),
    Damage("price 1e308", _set("p", "1e308"), QUARANTINE),
    Damage("price 1e308 as number", _set("p", 1e308), QUARANTINE),
    Damage("price a thousandfold", _scale("p", 1000.0), QUARANTINE),
    Damage("price a thousandth", _scale("p", 0.001), QUARANTINE),
    Damage("price an object", _set("p", {"v": "1"}), QUARANTINE),
    Damage("quantity missing", _drop("q"), QUARANTINE),
    Damage("quantity zero", _set("q", "0.00000000"), QUARANTINE),
    Damage("quantity negative", _set("q", "-1"), QUARANTINE),
    Damage("quantity NaN", _set("q", "nan"), QUARANTINE),
    Damage("quantity 1e308", _set("q", "1e308"), QUARANTINE),
    Damage("quantity a trillionfold", _scale("q", 1e12), QUARANTINE),
    Damage("maker flag missing", _drop("m"), QUARANTINE),
    Damage("maker flag a word", _set("m", "yes"), QUARANTINE),
    Damage("maker flag a number", _set("m", 1), QUARANTINE),
    Damage("insurance-fund fill", _set("X", "INSURANCE_FUND"), QUARANTINE),
    # not trades at all
    Damage("aggregate trade", lambda m, r: dumps({"stream": m["stream"].replace("@trade", "@aggTrade"),
                                                  "data": {**m["data"], "e": "aggTrade", "a": 1}}), IGNORED),
    Damage("book ticker", _other({"u": 1, "b": "1.0", "B": "2", "a": "1.1", "A": "3"}, "bookTicker"), IGNORED),
    Damage("depth update", _other({"e": "depthUpdate", "E": 1, "U": 1, "u": 2, "b": [["1", "2"]], "a": []},
                                  "depth@100ms"), IGNORED),
    Damage("24h ticker", _other({"e": "24hrTicker", "E": 1, "c": "1.0"}, "ticker"), IGNORED),
    Damage("mark price", _other({"e": "markPriceUpdate", "E": 1, "p": "1.0"}, "markPrice"), IGNORED),
    Damage("kline", _other({"e": "kline", "E": 1, "k": {"t": 1, "o": "1"}}, "kline_1m"), IGNORED),
    Damage("subscription reply", _other({"result": None, "id": 1}, None), IGNORED),
    Damage("error reply", _other({"code": 2, "msg": "Invalid request"}, None), IGNORED),
    Damage("depth snapshot", _other({"lastUpdateId": 5, "bids": [["1", "2"]], "asks": []}, None), IGNORED),
]


def as_text(frame: Frame) -> str:
    """A frame as the client reads it (binary frames decoded as UTF-8, bad bytes replaced)."""
    return frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
