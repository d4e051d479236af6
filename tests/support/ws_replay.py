"""A local WebSocket server replaying recorded Binance trade messages in combined-stream format.

Honours the `streams=` query (only the requested `<sym>@trade` streams), can pace messages by their
recorded receive times, and can be stopped mid-stream and started again, resuming where it stopped with
an optional overlap (re-sends, to prove dedupe) or skip (drops, to prove id-jump gaps).

    python -m tests.ws_replay --port 9443 spot_btcusdt_20240808.gz spot_ethusdt_20240808.gz
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

TRADE_MARK = '"e":"trade"'


def load_trade_messages(files: list[Path]) -> list[tuple[int, str, str]]:
    """(receive ns, stream name, raw JSON) of every trade message in the recordings, by receive time."""
    out: list[tuple[int, str, str]] = []
    for path in files:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                stamp, _, raw = line.rstrip("\n").partition(" ")
                if TRADE_MARK not in raw:
                    continue
                stream = raw.split('"stream":"', 1)[1].split('"', 1)[0]
                out.append((int(stamp), stream, raw))
    out.sort(key=lambda item: item[0])
    return out


class ReplayServer:
    """Replays trade messages to each client from a shared position; `stop()`/`start()` simulate an outage."""

    def __init__(self, files: list[Path], *, speed: float = 0.0, host: str = "127.0.0.1", port: int = 0):
        self.messages = load_trade_messages(files)
        self.speed, self.host, self.port = speed, host, port
        self.position = 0  # index of the next message to send
        self.limit: int | None = None  # stop sending (stay connected, silent) at this index
        self.sent = 0
        self.paths: list[str] = []  # request paths seen, newest last
        self._server = None
        self._streams: set[str] | None = None

    @property
    def url(self) -> str:
        """ws://host:port of the running server."""
        return f"ws://{self.host}:{self.port}"

    def trades(self, streams: set[str] | None = None) -> list[str]:
        """Raw messages of the given streams (all when None), in sending order."""
        return [raw for _, s, raw in self.messages if streams is None or s in streams]

    async def start(self, *, overlap: int = 0, skip: int = 0, limit: int | None = None) -> None:
        """Serve again from the current position, first moving back `overlap` or ahead `skip` requested messages."""
        self.position = self._move(self.position, -overlap) if overlap else self.position
        self.position = self._move(self.position, skip) if skip else self.position
        self.limit = limit
        self._server = await serve(self._handler, self.host, self.port, ping_interval=20)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listening socket and drop every connection (clients see the connection close)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def _move(self, position: int, count: int) -> int:
        """Position moved by `count` messages of the last requested streams (negative: backwards)."""
        wanted = lambda i: self._streams is None or self.messages[i][1] in self._streams  # noqa: E731
        remaining = abs(count)
        while remaining and count < 0 and position > 0:
            position -= 1
            remaining -= wanted(position)
        while remaining and count > 0 and position < len(self.messages):
            remaining -= wanted(position)
            position += 1
        return position

    async def _handler(self, ws: ServerConnection) -> None:
        """Send the requested trade streams from the shared position, paced by `speed`."""
        path = ws.request.path if ws.request is not None else "/"
        self.paths.append(path)
        query = parse_qs(urlsplit(path).query)
        wanted = {s for value in query.get("streams", []) for s in value.split("/") if s.endswith("@trade")}
        self._streams = wanted
        previous_ns = None
        try:
            while self.position < len(self.messages):
                if self.limit is not None and self.position >= self.limit:
                    # silent but connected (exercises the client's watchdog) until closed or unlimited
                    try:
                        await asyncio.wait_for(ws.wait_closed(), timeout=0.05)
                        return
                    except TimeoutError:
                        continue
                stamp, stream, raw = self.messages[self.position]
                if stream in wanted:
                    if self.speed > 0 and previous_ns is not None:
                        await asyncio.sleep(max(0.0, (stamp - previous_ns) / 1e9 / self.speed))
                    previous_ns = stamp
                    await ws.send(raw)
                    self.sent += 1
                    if self.sent % 200 == 0:
                        await asyncio.sleep(0)  # let the loop breathe (and a test stop us) mid-stream
                self.position += 1
            await ws.wait_closed()
        except ConnectionClosed:
            pass

    async def __aenter__(self) -> ReplayServer:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()


async def _main(port: int, files: list[Path], speed: float) -> None:
    """Serve until interrupted."""
    server = ReplayServer(files, speed=speed, port=port)
    await server.start()
    print(f"replaying {len(server.messages)} trade messages on {server.url}/stream?streams=btcusdt@trade/...")
    await asyncio.Future()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9443)
    parser.add_argument("--speed", type=float, default=1.0, help="1 = recorded pace, 0 = as fast as possible")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args()
    try:
        asyncio.run(_main(args.port, args.files, args.speed))
    except KeyboardInterrupt:
        pass
