"""tardis-machine source against a small local server sending normalized trade messages."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import orjson
import polars as pl
from websockets.asyncio.server import serve

from mdstream.contract import columns as c
from mdstream.contract.clock import WallClock
from mdstream.contract.feed import GAP_DISCONNECT
from mdstream.jobs.batcher import source_batches
from mdstream.sources.tardis_machine import TardisMachineSource

T0 = datetime(2024, 8, 8, 23, 54, tzinfo=timezone.utc)


def iso(when: datetime) -> str:
    """ISO-8601 with milliseconds and Z, as tardis-machine writes timestamps."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def trade(i: int, *, exchange: str = "bitmex", symbol: str = "XBTUSD") -> str:
    """One normalized trade message with a non-integer id."""
    when = T0 + timedelta(milliseconds=100 * i)
    return orjson.dumps({
        "type": "trade", "symbol": symbol, "exchange": exchange, "id": f"uuid-{i:04d}", "price": 7996 + i,
        "amount": 50, "side": "sell" if i % 3 else "buy", "timestamp": iso(when),
        "localTimestamp": iso(when + timedelta(milliseconds=70)),
    }).decode()


def test_trades_decode_dedupe_across_reconnect_and_disconnects_open_gaps(real_data):
    sample = (real_data / "tardis" / "trade.json").read_text()  # a real normalized message, pretty-printed
    requests: list[dict] = []
    connection = 0

    async def handler(ws):
        nonlocal connection
        connection += 1
        requests.append(json.loads(parse_qs(urlsplit(ws.request.path).query)["options"][0]))
        if connection == 1:
            await ws.send(sample)
            for i in range(50):
                await ws.send(trade(i))
            await ws.send('{"type":"book_change","symbol":"XBTUSD"}')
            await ws.send('{"type":"trade","symbol":"XBTUSD","exchange":"bitmex","price":"oops","amount":1,'
                          '"side":"buy","timestamp":"2024-08-08T23:54:06.000Z"}')
            await ws.close()  # the client reconnects
        else:
            for i in range(40, 60):  # ten already delivered
                await ws.send(trade(i))
            await ws.send('{"type":"disconnect","exchange":"bitmex","localTimestamp":"2024-08-08T23:54:07.000Z"}')
            for i in range(60, 70):
                await ws.send(trade(i))
            await ws.wait_closed()

    async def run():
        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            source = TardisMachineSource("bitmex", ["XBTUSD"], url=f"ws://127.0.0.1:{port}", backoff_initial=0.05)
            ticks, gaps, quarantine = [], [], []
            batches = source_batches(source, WallClock())
            async with asyncio.timeout(10):
                async for batch in batches:
                    ticks.append(batch.ticks)
                    gaps.extend(batch.gaps)
                    quarantine.append(batch.quarantine)
                    if sum(t.height for t in ticks) >= 71:
                        break
            await batches.aclose()
            return pl.concat(ticks), gaps, pl.concat(quarantine), source

    ticks, gaps, quarantine, source = asyncio.run(run())
    assert requests[0] == [{"exchange": "bitmex", "symbols": ["XBTUSD"], "dataTypes": ["trade"],
                            "withDisconnectMessages": True, "timeoutIntervalMS": 5000}]
    assert ticks.height == 71  # the real sample + 70 distinct trades, the 10 re-sent ones dropped
    assert ticks.get_column(c.ID).n_unique() == 71
    first = ticks.row(0, named=True)
    assert first[c.ID] == "282a0445-0e3a-abeb-f403-11003204ea1b"
    assert first[c.TIMESTAMP] == datetime(2019, 10, 23, 10, 32, 49, 669000, tzinfo=timezone.utc)
    assert (first[c.PRICE], first[c.AMOUNT], first[c.SIDE], first[c.SYMBOL]) == (7996.0, 50.0, "sell", "XBTUSD")
    assert quarantine.height == 1 and quarantine.row(0, named=True)[c.Q_FIELD] == "price"
    closed = [g for g in gaps if g.reason == GAP_DISCONNECT and g.end is not None]
    assert len(closed) == 2  # the dropped connection, then the exchange disconnect tardis-machine reported
    assert closed[1].end == T0 + timedelta(milliseconds=100 * 60)
    assert not [g for g in gaps if g.reason.startswith("trade id jump")]
    assert source.feed.connects == 2
    # every message accounted for: 1 + 50 + 2 on the first connection, 20 + 1 + 10 on the second
    status = source.status.snapshot()
    assert status["received"] == 84 and status["accepted"] == 71 and status["duplicates"] == 10
    assert status["quarantined"] == {"price is not a positive number up to 1e+12": 1}
    assert status["ignored"] == {"book_change": 1, "disconnect": 1}
    assert status["reconnects"] == 1
