"""Checks every healed ccxt venue's tests share: `mdstream stream --source ccxt` through an outage while the venue's
market goes on, whose stored windows must equal a Decimal aggregation of every trade, sent or missed, once healed,
and keep `gap = feed` with healing off."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import polars as pl

from mdstream.contract import columns as c
from mdstream.contract.feed import GAP_DISCONNECT
from support.ccxt_venues import Trade, VenueServer
from support.contracts import assert_matches_decimal, decimal_candles
from support.stream_cli import CliStream
from support.stream_helpers import read_db


def run_outage(tmp_path, factory: Callable[..., VenueServer], trades: list[Trade], exchange: str,
               symbols: list[str], label: str, *extra: str, cut: int, skip: int):
    """`mdstream stream --source ccxt --exchange <exchange>` on the stand-in at 300 trades/s, which drops the feed
    after `cut` trades and goes on trading `skip` more while it is down, then the rest; returns (job, server,
    metrics) once every window with a trade closed."""
    count = len(trades)

    async def scenario():
        server = await factory(trades, rate=300, batch=4, cut_after=cut, skip=skip).start()
        job = CliStream(tmp_path, "ccxt", ",".join(symbols), server.url, "--exchange", exchange,
                        "--timeframes", "15s", *extra)
        try:
            await job.start()
            await job.wait_for(lambda: job.accounting(label)["accepted"] >= count - skip, "every trade sent",
                               timeout=90)
            # the window of the last trade closes, and the fill lands and is written
            await asyncio.sleep(15 - time.time() % 15 + 3.0)
            metrics = await asyncio.to_thread(job.metrics)
            code = await job.stop()
            return code, job, server, metrics
        finally:
            await job.kill()
            await server.stop()

    code, job, server, metrics = asyncio.run(scenario())
    assert code == 0, job.output()[-3000:]
    return job, server, metrics


def inner_windows(job: CliStream) -> pl.DataFrame:
    """Latest 15 s candles with trades, between each symbol's first and last window (those two are partial)."""
    latest = read_db(job.db, "SELECT * FROM candles_latest WHERE timeframe = '15s' AND trades > 0")
    w = pl.col(c.TIMESTAMP_IN)
    return latest.filter((w > w.min().over(c.SYMBOL)) & (w < w.max().over(c.SYMBOL)))


def outage_is_healed(job: CliStream, server, metrics, symbols: list[str], number: Callable[[Trade], int],
                     kind: str) -> None:
    """Every trade, sent or skipped, stored once; no inner window left `feed`; each symbol's inner windows, the
    outage's among them and none missing, equal a Decimal aggregation of its trades in the order `number` gives
    (amounts of `kind`, one unit each); the healed fill counted in the summary and the metrics."""
    assert server.skipped and server.history_requests, job.output()[-3000:]
    everything = [*server.sent.values(), *server.skipped.values()]
    ticks = read_db(job.db, "SELECT symbol, id FROM ticks")
    assert set(zip(ticks[c.SYMBOL], ticks[c.ID])) == {(t.symbol, t.id) for t in everything}
    assert ticks.height == len(everything)  # each once
    inner = inner_windows(job)
    assert inner.filter(pl.col("gap") == "feed").height == 0, inner.select(c.SYMBOL, c.TIMESTAMP_IN, "gap")
    checked = 0
    for symbol in symbols:
        mine = sorted((t for t in everything if t.symbol == symbol), key=number)
        truth = pl.DataFrame({c.TIMESTAMP: [t.ts * 1000 for t in mine], c.SIDE: [t.side for t in mine],
                              c.PRICE: [float(t.price) for t in mine], c.AMOUNT: [float(t.amount) for t in mine]})
        expected = decimal_candles(truth, "15s", kind, 1.0)
        emitted = inner.filter(pl.col(c.SYMBOL) == symbol)
        assert emitted.height >= 1
        checked += assert_matches_decimal(emitted, {w: v for w, v in expected.items()
                                                    if w in set(emitted[c.TIMESTAMP_IN].to_list())})
    assert checked >= 2
    # the outage's windows are among those checked, and none is missing between the first and the last
    for symbol in symbols:
        missed = {datetime.fromtimestamp(t.ts // 15_000 * 15, UTC) for t in server.skipped.values() if t.symbol == symbol}
        assert missed <= set(inner.filter(pl.col(c.SYMBOL) == symbol)[c.TIMESTAMP_IN].to_list()), missed
        ws = sorted(inner.filter(pl.col(c.SYMBOL) == symbol)[c.TIMESTAMP_IN].to_list())
        assert all(b - a == timedelta(seconds=15) for a, b in zip(ws, ws[1:])), ws
    assert re.search(r"'complete': [1-9]", job.output()), job.output()[-2000:]
    assert job.total("mdstream_heals_total", metrics, outcome="complete") >= 1
    assert job.total("mdstream_healed_windows_total", metrics) >= 1


def outage_stays_feed(job: CliStream, server, metrics) -> None:
    """With healing off: no history asked, only what the feed sent stored, the outage's windows still `feed`."""
    assert not server.history_requests
    ticks = read_db(job.db, "SELECT symbol, id FROM ticks")
    assert ticks.height == len(server.sent)  # what the feed sent, nothing more
    assert inner_windows(job).filter(pl.col("gap") == "feed").height >= 1
    assert job.total("mdstream_heals_total", metrics) == 0


def run_start(tmp_path, factory: Callable[..., VenueServer], trades: list[Trade], exchange: str, symbols: list[str],
              label: str, *, unseen: int = 900):
    """`mdstream stream --source ccxt --exchange <exchange>` started 1 s into a 15 s window on a stand-in whose market
    traded `unseen` trades (3 s at 300 trades/s, from 2 s before that window) before the job connected; returns
    (job, server) once the window after the one holding the start closed."""
    async def scenario():
        server = await factory(trades, rate=300, batch=4).start()
        job = CliStream(tmp_path, "ccxt", ",".join(symbols), server.url, "--exchange", exchange, "--timeframes", "15s")
        try:
            # 2 s before a window: the market trades into it, and the job starts within it
            await asyncio.sleep((13 - time.time() % 15) % 15)
            await server.trade_unseen(unseen)
            await job.start()
            await job.wait_for(lambda: job.accounting(label)["accepted"] >= 4_800, "16 s of the feed", timeout=90)
            await asyncio.sleep(15 - time.time() % 15 + 3.0)
            code = await job.stop()
            return code, job, server
        finally:
            await job.kill()
            await server.stop()

    code, job, server = asyncio.run(scenario())
    assert code == 0, job.output()[-3000:]
    return job, server


def start_is_healed(job: CliStream, server, symbols: list[str], number: Callable[[Trade], int], kind: str) -> None:
    """Each symbol's first window with trades holds trades the feed never sent (they were before the job), is not
    `feed`, and equals a Decimal aggregation of every trade in it in the order `number` gives (amounts of `kind`,
    one unit each); one complete fill per symbol, making windows whole, in the summary."""
    unseen = list(server.skipped.values())
    everything = [*unseen, *server.sent.values()]
    latest = read_db(job.db, "SELECT * FROM candles_latest WHERE timeframe = '15s' AND trades > 0")
    for symbol in symbols:
        window = latest.filter(pl.col(c.SYMBOL) == symbol)[c.TIMESTAMP_IN].min()
        mine = sorted((t for t in everything if t.symbol == symbol), key=number)
        assert any(t.ts // 15_000 * 15 == window.timestamp() for t in unseen if t.symbol == symbol), window
        row = latest.filter((pl.col(c.SYMBOL) == symbol) & (pl.col(c.TIMESTAMP_IN) == window))
        assert row["gap"].to_list() != ["feed"], (row, job.output()[-3000:])
        truth = pl.DataFrame({c.TIMESTAMP: [t.ts * 1000 for t in mine], c.SIDE: [t.side for t in mine],
                              c.PRICE: [float(t.price) for t in mine], c.AMOUNT: [float(t.amount) for t in mine]})
        assert assert_matches_decimal(row, {window: decimal_candles(truth, "15s", kind, 1.0)[window]}) == 1
    assert re.search(rf"'complete': {len(symbols)}", job.output()), job.output()[-2000:]
    assert re.search(r"'windows': [1-9]", job.output()), job.output()[-2000:]


def missed_run(factory: Callable[..., VenueServer], trades: list[Trade], venue: str, symbols: list[str]):
    """The ccxt source on a stand-in that drops the feed after 100 trades and stamps 60 more while it is down,
    read until the rest arrived: (the gaps reported, the stand-in); none of the trades counted as a repeat."""
    from mdstream.sources.ccxt_source import CcxtSource
    from support.ccxt_checks import collect

    async def scenario():
        server = await factory(trades, cut_after=100, skip=60, rate=400).start()
        try:
            source = await asyncio.to_thread(CcxtSource, venue, symbols, url=server.url, silence_timeout=3,
                                             backoff_initial=0.05)
            chunks = await collect(source, lambda s: s.accepted >= len(trades) - 60)
            return source, chunks, server
        finally:
            await server.stop()

    source, chunks, server = asyncio.run(scenario())
    assert len(server.skipped) == 60 and source.status.duplicates == 0
    gaps = [g for ch in chunks for g in ch.gaps]
    assert any(g.reason.startswith(GAP_DISCONNECT) for g in gaps if g.ids is None)
    return gaps, server
