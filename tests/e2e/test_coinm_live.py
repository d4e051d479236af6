"""`mdstream stream --source binance-delivery` against a local COIN-M feed: the live job applies each contract's
size (BTCUSD_PERP 100 USD, ETHUSD_PERP 10 USD), so contracts, base volume, notional and vwap of every closed
window equal a Decimal computation over the trades it stored."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import timedelta

import duckdb
import polars as pl
import pytest

from mdstream.contract import columns as c
from support.contracts import assert_matches_decimal, decimal_candles
from support.stream_cli import CliStream
from support.ws_faults import FaultServer, generated_messages

SYMBOLS = {"BTCUSD_PERP": 100.0, "ETHUSD_PERP": 10.0}
COUNT = 5_000
RATE = 250.0  # messages/s: 20 s of feed, so at least one whole 15 s window closes for each symbol


def read(db, sql: str) -> pl.DataFrame:
    """One query of the job's DuckDB file."""
    with duckdb.connect(str(db), read_only=True) as con:
        return con.sql(sql).pl()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_live_coinm_candles_equal_decimal_contract_volumes(tmp_path, monkeypatch):
    monkeypatch.setenv("MDSTREAM_INSTRUMENTS_FETCH", "off")  # the built-in table; no venue is asked

    async def scenario():
        server = await FaultServer(generated_messages("binance-delivery", list(SYMBOLS), COUNT), rate=RATE).start()
        job = CliStream(tmp_path, "binance-delivery", ",".join(SYMBOLS), server.url, "--timeframes", "15s")
        try:
            await job.start()
            await job.wait_for(lambda: job.accounting("binance-delivery")["accepted"] >= COUNT, "every trade",
                               timeout=60)
            # past the end (+ lateness) of the window holding the last trade (the server stamps trades with the
            # wall clock), so every window with trades closes before the stop
            await asyncio.sleep(15 - time.time() % 15 + 1.0)
            code = await job.stop(signal.SIGTERM)
            return code, job
        finally:
            await job.kill()
            await server.stop()

    code, job = asyncio.run(scenario())
    assert code == 0, job.output()[-3000:]
    ticks = read(job.db, "SELECT * FROM ticks ORDER BY symbol, timestamp, id")
    assert ticks.height == COUNT and ticks[c.EXCHANGE].unique().to_list() == ["binance-delivery"]
    candles = read(job.db, "SELECT * FROM candles_latest WHERE timeframe = '15s' AND trades > 0")
    checked = 0
    for symbol, size in SYMBOLS.items():
        emitted = candles.filter(pl.col(c.SYMBOL) == symbol)
        last_end = emitted[c.TIMESTAMP_IN].max() + timedelta(seconds=15)
        expected = decimal_candles(ticks.filter(pl.col(c.SYMBOL) == symbol), "15s", "inverse", size)
        # every window with trades that closed before the stop is there, and equals the Decimal values
        closed = {start: want for start, want in expected.items() if start + timedelta(seconds=15) <= last_end}
        assert len(closed) == len(expected) >= 2, (symbol, sorted(expected), last_end)
        checked += assert_matches_decimal(emitted, closed)
    assert checked >= 4
