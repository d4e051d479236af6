"""A local WebSocket server on 127.0.0.1 that plays exchange trade messages to a client and, on command, drops the
connection (refusing new ones for a while), stalls, lags, damages, duplicates and reorders messages.

Messages are Binance combined-stream dicts: real spot recordings (`recorded_messages`) or generated USD-M and
COIN-M ones in the venues' documented formats (`generated_messages`). Each is re-timed when sent (T = the wall
clock minus the current lag, in ms) so a live job sees a live feed. The server logs every frame it sends with
the outcome the client must give it (see support.damage), so a test knows what should come out.

    python -m support.ws_faults --port 9443 --market binance-delivery --symbols BTCUSD_PERP,ETHUSD_PERP
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import random
import time
from collections import deque
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from support.damage import KINDS, QUARANTINE, TRADE, Damage, Frame, as_text, dumps, trade_message
from support.ws_replay import load_trade_messages

DUPLICATE = "duplicate"


def recorded_messages(files: list[Path], limit: int | None = None) -> list[dict]:
    """The trade messages of real recordings, in receive order."""
    return [orjson.loads(raw) for _, _, raw in load_trade_messages(files)[:limit]]


def generated_messages(market: str, symbols: list[str], count: int, *, seed: int = 0) -> list[dict]:
    """`count` trade messages of a Binance futures market, round-robin over `symbols`, ids consecutive per
    symbol, prices a random walk; COIN-M (binance-delivery) quantities are whole contracts. One in 200 USD-M
    trades is an insurance-fund fill (X=INSURANCE_FUND), as the venue streams them."""
    rng = random.Random(seed)
    price = {s: 60_000.0 if s.startswith("BTC") else 3_000.0 for s in symbols}
    ids = {s: 5_000_000 + 1000 * i for i, s in enumerate(symbols)}
    out = []
    for n in range(count):
        symbol = symbols[n % len(symbols)]
        price[symbol] *= 1 + rng.gauss(0, 2e-4)
        qty = str(rng.randint(1, 50)) if market == "binance-delivery" else f"{rng.uniform(0.001, 3):.3f}"
        message = trade_message(symbol, ids[symbol], price[symbol], qty, 0, futures=True, buyer_maker=rng.random() < .5)
        if market == "binance-futures" and n % 200 == 199:
            message["data"]["X"] = "INSURANCE_FUND"
        ids[symbol] += 1
        out.append(message)
    return out


class FaultServer:
    """Plays `messages` from a shared position at `rate` messages/s (0: as fast as possible), honouring the
    client's `streams=` query; the fault methods act on what is sent next."""

    def __init__(self, messages: list[dict], *, rate: float = 0.0, host: str = "127.0.0.1", port: int = 0,
                 seed: int = 0):
        self.messages, self.rate, self.host, self.port = messages, rate, host, port
        self.rng = random.Random(seed)
        self.position = 0
        self.log: list[tuple[Frame, str, dict]] = []  # (frame sent, expected outcome, the message it came from)
        self.paths: list[str] = []
        self.lag_ms = 0
        self._paused_until = 0.0
        self._damage: deque[Damage] = deque()
        self._duplicate = self._reorder = 0
        self._held: dict | None = None  # a message held back to be sent after the next one
        self._overlap_until = 0  # messages before this position are being sent a second time
        self._unsent: list[tuple[Frame, str, dict]] = []  # frames made when the connection went away
        self.missed: list[dict] = []  # messages due while down in an `outage` (never sent)
        self._server = None
        self._current: ServerConnection | None = None  # only the newest client is fed
        self._streams: set[str] | None = None

    @property
    def url(self) -> str:
        """ws://host:port of the server."""
        return f"ws://{self.host}:{self.port}"

    @property
    def done(self) -> bool:
        """True once every message was sent."""
        return self.position >= len(self.messages) and self._held is None and not self._unsent

    async def start(self) -> FaultServer:
        """Listen (again) on the same port."""
        self._server = await serve(self._handler, self.host, self.port, ping_interval=None, max_size=2**24)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    # --- faults -------------------------------------------------------------------------------------------------
    async def drop(self, down_for: float = 0.0, *, overlap: int = 0) -> None:
        """Close the connections and refuse new ones for `down_for` s; then resume `overlap` messages back (the
        re-sent ones are duplicates the client must drop)."""
        await self.stop()
        self.position = max(0, self.position - overlap)
        self._overlap_until = self.position + overlap
        if down_for:
            await asyncio.sleep(down_for)
        await self.start()

    async def outage(self, down_for: float) -> None:
        """Close the connections and refuse new ones for `down_for` s while the market goes on: the messages due
        meanwhile (at `rate`) are never sent; they are kept in `missed`, stamped when they happened, for a REST
        history stand-in to serve."""
        await self.stop()
        began, step = time.monotonic(), 1 / self.rate if self.rate else 0.01
        while time.monotonic() - began < down_for and self.position < len(self.messages):
            message = copy.deepcopy(self.messages[self.position])
            self.position += 1
            if self._streams is None or message["stream"] in self._streams:
                message["data"]["T"] = int(time.time() * 1000) - self.lag_ms
                message["data"]["E"] = message["data"]["T"] + 1
                self.missed.append(message)
            await asyncio.sleep(step)
        await self.start()

    def stall(self, seconds: float) -> None:
        """Send nothing for `seconds` while staying connected."""
        self._paused_until = time.monotonic() + seconds

    def lag(self, seconds: float) -> None:
        """From now on trades carry event times `seconds` before the moment they are sent (a lagging feed)."""
        self.lag_ms = int(seconds * 1000)

    def damage(self, count: int, kinds: list[Damage] | None = None) -> None:
        """Replace the next `count` messages by damaged ones, cycling through `kinds` (default: all)."""
        kinds = kinds or KINDS
        self._damage.extend(kinds[i % len(kinds)] for i in range(count))

    def duplicate(self, count: int) -> None:
        """Send each of the next `count` messages twice."""
        self._duplicate += count

    def reorder(self, count: int) -> None:
        """Swap the next `count` messages pairwise (the second of each pair goes first)."""
        self._reorder += count

    def inject(self, frames: list[Frame], outcome: str) -> None:
        """Send extra frames (e.g. non-trade messages) next."""
        self._unsent.extend((frame, outcome, {}) for frame in frames)

    # --- bookkeeping ------------------------------------------------------------------------------------------------
    def sent_frames(self) -> int:
        """Frames sent so far."""
        return len(self.log)

    def expected_trades(self) -> set[tuple[str, str]]:
        """(symbol, id) of every valid trade sent (whatever its form): each must come out of the job once."""
        out = set()
        for frame, outcome, _ in self.log:
            if outcome == TRADE:
                data = orjson.loads(as_text(frame).strip().encode())["data"]
                out.add((data["s"].upper(), str(int(data["t"]))))
        return out

    # --- serving ------------------------------------------------------------------------------------------------
    async def _handler(self, ws: ServerConnection) -> None:
        """Send from the shared position until closed or replaced by a newer client."""
        self.paths.append(ws.request.path if ws.request is not None else "/")
        query = parse_qs(urlsplit(self.paths[-1]).query)
        self._streams = {s for value in query.get("streams", []) for s in value.split("/")} or None
        self._current = ws
        try:
            while ws is self._current:
                wait = self._paused_until - time.monotonic()
                if wait > 0 or self.done:
                    try:  # idle, but leave as soon as the connection closes
                        await asyncio.wait_for(ws.wait_closed(), timeout=min(max(wait, 0.0), 0.05) or 0.05)
                        return
                    except TimeoutError:
                        continue
                frames, self._unsent = self._unsent + self._next(), []
                for i, (frame, outcome, message) in enumerate(frames):
                    try:
                        await ws.send(frame)
                    except ConnectionClosed:
                        self._unsent = frames[i:]  # never sent: the next connection gets them
                        return
                    self.log.append((frame, outcome, message))
                await asyncio.sleep(1 / self.rate if self.rate else 0)
            await ws.wait_closed()
        except ConnectionClosed:
            pass

    def _next(self) -> list[tuple[Frame, str, dict]]:
        """The frames for the next message, faults applied; moves the position."""
        if self.position >= len(self.messages):
            held, self._held = self._held, None
            return [] if held is None else self._frames(held, resent=False)
        message = self.messages[self.position]
        resent = self.position < self._overlap_until
        self.position += 1
        if self._streams is not None and message["stream"] not in self._streams:
            return []
        if self._reorder > 0 and self._held is None:
            self._reorder -= 1
            self._held = message
            return []
        frames = self._frames(message, resent)
        if self._held is not None:
            held, self._held = self._held, None
            self._reorder = max(0, self._reorder - 1)
            frames += self._frames(held, resent=False)
        return frames

    def _frames(self, message: dict, resent: bool) -> list[tuple[Frame, str, dict]]:
        """One message re-timed, maybe damaged, maybe twice."""
        live = copy.deepcopy(message)
        live["data"]["T"] = int(time.time() * 1000) - self.lag_ms
        live["data"]["E"] = live["data"]["T"] + 1
        if self._damage:
            kind = self._damage.popleft()
            return [(kind.make(live, self.rng), kind.expect, live)]
        outcome = DUPLICATE if resent else (TRADE if live["data"].get("X", "MARKET") == "MARKET" else QUARANTINE)
        frames = [(dumps(live), outcome, live)]
        if self._duplicate > 0:
            self._duplicate -= 1
            frames.append((frames[0][0], DUPLICATE, live))
        return frames


async def _main(args) -> None:
    """Serve generated messages until interrupted."""
    symbols = args.symbols.split(",")
    server = FaultServer(generated_messages(args.market, symbols, args.count), rate=args.rate, port=args.port)
    await server.start()
    print(f"serving {args.count} {args.market} trades on {server.url}/stream?streams=...")
    await asyncio.Future()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9443)
    parser.add_argument("--market", default="binance-futures", choices=["binance-futures", "binance-delivery"])
    parser.add_argument("--symbols", default="BTCUSDT,ETHUSDT")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=50.0)
    try:
        asyncio.run(_main(parser.parse_args()))
    except KeyboardInterrupt:
        pass
