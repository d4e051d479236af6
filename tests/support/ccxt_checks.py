"""Checks every ccxt venue's tests share: reading a source's chunks until a condition holds, and a whole
`mdstream stream --source ccxt` run against a venue stand-in whose candles must equal a Decimal aggregation of the
trades the stand-in sent."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import polars as pl

from mdstream.contract import columns as c
from mdstream.contract.clock import WallClock
from mdstream.contract.feed import GAP_DISCONNECT, GAP_STARTUP
from mdstream.sources.ccxt_source import CcxtSource
from support.ccxt_venues import Trade, VenueServer
from support.contracts import assert_matches_decimal, decimal_candles
from support.stream_cli import CliStream
from support.stream_helpers import read_db


async def collect(source: CcxtSource, until, timeout: float = 20.0) -> list:
    """Chunks of the source until `until(status)` holds."""
    chunks = []
    deadline = time.monotonic() + timeout
    gen = source.chunks(WallClock())
    try:
        async for chunk in gen:
            chunks.append(chunk)
            if until(source.status) or time.monotonic() > deadline:
                break
    finally:
        await gen.aclose()
    return chunks


def stream_matches_decimal(tmp_path, factory: Callable[..., VenueServer], trades: list[Trade], exchange: str,
                           given: list[str], label: str, sizes: dict[str, tuple[str, float]]) -> None:
    """Run `mdstream stream --source ccxt` on the stand-in (a drop halfway, 20 trades re-sent after it, 50 more
    on each new connection) until every trade is taken in and the last window closed; assert the accounting, the
    ticks, and that every closed 15 s window of each symbol of `sizes` ({symbol: (kind, contract size)}) equals a
    Decimal aggregation of what the stand-in sent."""
    count = len(trades)

    async def scenario():
        server = await factory(trades, rate=200, batch=4, cut_after=count // 2, overlap=20,
                               resend_on_connect=50).start()
        job = CliStream(tmp_path, "ccxt", ",".join(given), server.url, "--exchange", exchange, "--timeframes", "15s")
        try:
            await job.start()
            await job.wait_for(lambda: job.accounting(label)["accepted"] >= count, "every trade", timeout=90)
            # the window of the last trade closes (its end + lateness, plus the feed's lag and a loaded machine's fold)
            await asyncio.sleep(15 - time.time() % 15 + 3.0)
            accounting = await asyncio.to_thread(job.accounting, label)
            code = await job.stop(signal.SIGTERM)
            return code, job, accounting, server
        finally:
            await job.kill()
            await server.stop()

    code, job, accounting, server = asyncio.run(scenario())
    assert code == 0, job.output()[-3000:]
    # the drop was seen and counted; the re-sent trades are duplicates, not volume
    assert accounting["duplicates"] >= 20 and accounting["reconnects"] >= 1, accounting
    assert accounting["received"] == accounting["accepted"] + accounting["duplicates"], accounting
    assert accounting["accepted"] == count, accounting

    ticks = read_db(job.db, "SELECT * FROM ticks ORDER BY symbol, timestamp, id")
    assert ticks.height == count and ticks[c.EXCHANGE].unique().to_list() == [label]
    assert sorted(ticks[c.SYMBOL].unique().to_list()) == sorted({t.symbol for t in trades})
    candles = read_db(job.db, "SELECT * FROM candles_latest WHERE timeframe = '15s' AND trades > 0")
    sent = [server.sent[i] for i in sorted(server.sent)]
    checked = 0
    for symbol, (kind, size) in sizes.items():
        # the truth is what the venue sent (its decimal text), in the order it sent it
        mine = [t for t in sent if t.symbol == symbol]
        truth = pl.DataFrame({c.TIMESTAMP: [t.ts * 1000 for t in mine], c.SIDE: [t.side for t in mine],
                              c.PRICE: [float(t.price) for t in mine], c.AMOUNT: [float(t.amount) for t in mine]})
        expected = decimal_candles(truth.sort(c.TIMESTAMP, maintain_order=True), "15s", kind, size)
        emitted = candles.filter(pl.col(c.SYMBOL) == symbol)
        last_end = emitted[c.TIMESTAMP_IN].max() + timedelta(seconds=15)
        closed = {s: w for s, w in expected.items() if s + timedelta(seconds=15) <= last_end}
        assert len(closed) == len(expected) >= 2, (symbol, sorted(expected), last_end)
        checked += assert_matches_decimal(emitted, closed)
    assert checked >= 2 * len(sizes)


def drop_is_counted(factory: Callable[..., VenueServer], trades: list[Trade], exchange: str, given: list[str],
                    ids: list[str], label: str, connections: tuple[int, ...] = (2,),
                    jumps: tuple[tuple[str, tuple[int, int]], ...] = ()) -> None:
    """The stand-in drops the connection after 50 trades and re-sends 8 after the reconnect; trade 40 has price 0.
    Every trade ccxt hands over is accounted for once (8 duplicates, 1 quarantined), the drop is one `feed` gap
    from the last trade before it, the ticks are exactly the trades sent, and ccxt asked nothing the stand-in does
    not serve. `connections`: how many the stand-in may see (one watch per symbol may dial once more); `jumps`:
    the (symbol, ids) gaps of a venue whose trades are numbered consecutively (the quarantined trade is missing
    from its sequence: its windows lack it)."""
    trades = list(trades)
    trades[40] = replace(trades[40], price="0")  # a venue's bad row: quarantined, never a tick

    async def scenario():
        server = await factory(trades, cut_after=50, overlap=8, rate=400).start()
        try:
            source = await asyncio.to_thread(CcxtSource, exchange, given, url=server.url, silence_timeout=3,
                                             backoff_initial=0.05)
            chunks = await collect(source, lambda s: s.accepted + sum(s.quarantined.values()) >= len(trades))
            return source, chunks, server
        finally:
            await server.stop()

    source, chunks, server = asyncio.run(scenario())
    assert source.exchange == label and source.symbols == tuple(ids) and server.unknown == []
    status = source.status
    assert status.received == status.accepted + status.duplicates + sum(status.quarantined.values()) \
        + sum(status.ignored.values())
    assert status.received == server.pushed == len(trades) + 8
    assert status.duplicates == 8 and status.accepted == len(trades) - 1
    assert status.quarantined == {"price not a positive number": 1}
    assert status.reconnects == 1 and server.connections in connections
    closed = [g for ch in chunks for g in ch.gaps if g.end is not None and g.ids is None]
    assert tuple((g.symbols[0], g.ids) for ch in chunks for g in ch.gaps if g.ids is not None) == jumps
    assert [g.reason for g in closed] == [GAP_STARTUP, GAP_DISCONNECT]
    drop = closed[1]
    assert drop.symbols == tuple(ids) and drop.start <= drop.end
    # the gap starts at the last trade before the drop
    sent = [server.sent[i] for i in sorted(server.sent)]
    assert drop.start == max(pl.Series([t.ts for t in sent[:50]]).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"))
    ticks = pl.concat([ch.ticks for ch in chunks if ch.ticks is not None and ch.ticks.height])
    assert ticks[c.EXCHANGE].unique().to_list() == [label]
    got = set(zip(ticks[c.SYMBOL], ticks[c.ID], ticks[c.SIDE], ticks[c.PRICE], ticks[c.AMOUNT],
                  ticks[c.TIMESTAMP].dt.epoch("ms")))
    want = {(t.symbol, t.id, t.side, float(t.price), float(t.amount), t.ts) for t in sent if t.price != "0"}
    assert got == want


def burst_is_read_whole(factory: Callable[..., VenueServer], trades: list[Trade], exchange: str,
                        given: list[str]) -> None:
    """Messages of several symbols arriving between two reads (the stand-in as fast as it can): ccxt answers a
    watch with one symbol's trades, the others wait in its stores; every one is read, none waits for a later
    message of its symbol."""
    async def scenario():
        server = await factory(trades, rate=1e6, batch=4).start()
        try:
            source = await asyncio.to_thread(CcxtSource, exchange, given, url=server.url, silence_timeout=2)
            await collect(source, lambda s: s.accepted >= len(trades), timeout=4)
            return source
        finally:
            await server.stop()

    status = asyncio.run(scenario()).status
    assert (status.received, status.accepted, status.duplicates) == (len(trades), len(trades), 0)
