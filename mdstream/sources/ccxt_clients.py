"""Every WebSocket connection ccxt opens for a source, closed on a drop, including ones ccxt itself lost track of.

ccxt keeps one client per URL in `exchange.clients` and forgets a client when its connection closes by deleting
whatever client that URL holds then: a watch made between the server's close and ccxt's handling of it dials a new
client that this deletion orphans, so `close_ws_clients` never closes it and it lives on, unread, feeding the
stores. Its dial may also still be in flight when the source drops (ccxt closes nothing that has not opened yet)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

CONNECT_WAIT = 10.0  # seconds a connection being dialled may take to open before it is closed (ccxt's own limit)


def track_clients(ex: Any) -> list[Any]:
    """Record every client `ex` hands out from now on (the list returned), whatever `ex.clients` forgets."""
    made: list[Any] = []
    original = ex.client

    def client(url: str) -> Any:
        found = original(url)
        if not any(found is c for c in made):
            made.append(found)
        return found

    ex.client = client
    return made


async def close_clients(ex: Any, made: list[Any]) -> None:
    """Close every client of `ex`, tracked or current: a dial in flight is let finish (up to CONNECT_WAIT) first."""
    clients = [*made, *(c for c in getattr(ex, "clients", {}).values() if not any(c is m for m in made))]
    dialling = [c.connected for c in clients if getattr(c, "connecting", False) and not c.connected.done()]
    if dialling:
        await asyncio.wait([asyncio.shield(f) for f in dialling], timeout=CONNECT_WAIT)
    for found in clients:
        with contextlib.suppress(Exception):
            await found.close()
    made.clear()
    with contextlib.suppress(Exception):
        await ex.close_ws_clients()


async def release(ex: Any) -> None:
    """Close a ccxt async exchange whole: its WebSocket clients and its HTTP session (ccxt's plain close() keeps
    the session, which would leak a connection pool and warn at exit)."""
    try:
        await ex.close(clean_instance_data=True)
    except TypeError:  # a ccxt without the flag closes its session in close()
        await ex.close()
