"""Outages healed from the venue's REST history: `mdstream stream` against a local USD-M WebSocket feed that goes
down for 15 s while the market goes on, and a local trade-history stand-in holding what it missed. The job fetches
the trades between the last id before the drop and the first after it, folds them in as late trades and clears
`gap = feed`: every window equals the uninterrupted feed's, with revisions; with `--heal off` the hole stays feed."""

from __future__ import annotations

import asyncio
import re

import duckdb
import polars as pl
import pytest

from support.rest_history import HistoryServer, history_row
from support.stream_cli import CliStream
from support.ws_faults import FaultServer, generated_messages

pytestmark = [pytest.mark.timeout(150), pytest.mark.slow]
SYMBOLS = ["BTCUSDT", "ETHUSDT"]


def market() -> list[dict]:
    """Generated USD-M trade messages, all regular market trades (consecutive ids per symbol)."""
    messages = generated_messages("binance-futures", SYMBOLS, 9_000, seed=7)
    for message in messages:
        message["data"]["X"] = "MARKET"
    return messages


async def run_market(tmp_path, *extra: str, before: float = 0.0, outage: float = 15.0, timeframes: str = "15s,1m",
                     after: int = 1_200) -> tuple[FaultServer, CliStream, HistoryServer]:
    """The market trades `before` s with nobody listening; the job streams (~6 s, then an `outage` of that many
    s while the market goes on, if any), then `after` more messages; the market pauses and the job stops. The
    history stand-in holds every trade, sent or missed."""
    server = await FaultServer(market(), rate=200).start()
    history = await HistoryServer(lambda: [history_row(m) for _, _, m in server.log if m]
                                  + [history_row(m) for m in server.missed]).start()
    if before:
        await server.outage(before)  # these trades exist only in the history
    job = CliStream(tmp_path, "binance-futures", ",".join(SYMBOLS), server.url, "--timeframes", timeframes,
                    "--heal-url", history.url, *extra)
    try:
        await job.start()
        if outage:
            while server.position < len(server.missed) + 1_200:
                await asyncio.sleep(0.05)
            await server.outage(outage)
        resumed = server.position
        while server.position < resumed + after:
            await asyncio.sleep(0.05)
        server.stall(60.0)  # the market pauses: everything sent is taken in before the stop
        await asyncio.sleep(3.0)  # the fill lands and the revisions are written
        job.last_metrics = await asyncio.to_thread(job.metrics)  # type: ignore[attr-defined]
        assert await job.stop() == 0, job.output()
        return server, job, history
    finally:
        await job.kill()
        await server.stop()
        await history.stop()


def traded(messages: list[dict]) -> pl.DataFrame:
    """(symbol, window, trades, volume) of 15 s windows, from the trade messages themselves."""
    frame = pl.DataFrame({"symbol": [m["data"]["s"] for m in messages], "T": [m["data"]["T"] for m in messages],
                          "q": [float(m["data"]["q"]) for m in messages]})
    return (frame.with_columns(pl.from_epoch("T", time_unit="ms").dt.truncate("15s").dt.replace_time_zone("UTC")
                               .alias("w"))
            .group_by("symbol", "w").agg(pl.len().alias("trades"), pl.col("q").sum().alias("volume")))


def stored(job: CliStream) -> tuple[pl.DataFrame, int, set[str]]:
    """(latest 15 s candles, rows with revision > 0, trade ids stored)."""
    with duckdb.connect(str(job.db), read_only=True) as con:
        latest = con.sql("SELECT symbol, timestamp_in AS w, trades, volume, gap FROM candles_latest "
                         "WHERE timeframe = '15s' ORDER BY symbol, w").pl().with_columns(
            pl.col("w").dt.convert_time_zone("UTC"))
        revised = con.sql("SELECT count(*) FROM candles WHERE revision > 0").fetchall()[0][0]
        ids = {f"{s}:{i}" for s, i in con.sql("SELECT symbol, id FROM ticks").fetchall()}
    return latest, revised, ids


def test_a_fifteen_second_outage_healed_from_rest_equals_the_uninterrupted_feed(tmp_path):
    server, job, history = asyncio.run(run_market(tmp_path))
    assert len(server.missed) > 1_000, "the outage must have skipped trades"
    assert history.requests, "the job never asked the history"
    sent = [m for _, _, m in server.log if m]
    everything = sent + server.missed
    latest, revised, ids = stored(job)
    # no trade lost: every one sent or missed is stored once
    assert ids == {f"{m['data']['s']}:{m['data']['t']}" for m in everything}
    assert revised > 0, "healed windows are revisions"
    # the first window (the start) and the last traded one (the market's pause is a silent feed from its last
    # trade) are partial; every window between them is complete
    last = pl.col("w").filter(pl.col("trades") > 0).max().over("symbol")
    inner = latest.filter((pl.col("w") > pl.col("w").min().over("symbol")) & (pl.col("w") < last))
    assert inner.filter(pl.col("gap") == "feed").height == 0, inner.filter(pl.col("gap") == "feed")
    want = traded(everything)
    got = inner.join(want, on=["symbol", "w"], how="left", suffix="_want")
    assert got.filter(pl.col("trades") != pl.col("trades_want").fill_null(0)).height == 0, got
    assert got.filter((pl.col("volume") - pl.col("volume_want").fill_null(0.0)).abs() > 1e-9).height == 0
    # the run summary counts the fills and the windows they made whole
    assert re.search(r"'complete': [1-9]", job.output()) and re.search(r"'windows': [1-9]", job.output()), \
        job.output()[-2000:]
    assert job.total("mdstream_heals_total", job.last_metrics, outcome="complete") >= 1
    assert job.total("mdstream_healed_windows_total", job.last_metrics) >= 3  # the outage's 15 s windows at least
    assert job.total("mdstream_healed_trades_total", job.last_metrics) >= len(server.missed)


def test_with_heal_off_the_outage_stays_feed(tmp_path):
    server, job, history = asyncio.run(run_market(tmp_path, "--heal", "off"))
    latest, revised, ids = stored(job)
    assert not history.requests
    assert latest.filter(pl.col("gap") == "feed").height >= 3  # the start, and the 15 s outage
    assert len(ids) == len([m for _, _, m in server.log if m])  # what the feed sent, nothing more


def test_the_partial_window_at_start_is_healed_from_rest(tmp_path):
    """The market trades for 20 s before the job starts: the 15 s window holding the start instant is filled from
    the history back to its start, from the first trade id the feed delivers, and is no longer feed."""
    # past the end of the window holding the start
    server, job, history = asyncio.run(run_market(tmp_path, before=20.0, outage=0.0, timeframes="15s", after=4_500))
    assert history.requests, "the job never asked the history"
    latest, revised, ids = stored(job)
    everything = server.missed + [m for _, _, m in server.log if m]
    live_first = min(int(m["data"]["t"]) for _, _, m in server.log if m)
    first = latest.filter(pl.col("trades") > 0).group_by("symbol").agg(pl.col("w").min()).rows()
    want = traded(everything)
    for symbol, window in first:
        row = latest.filter((pl.col("symbol") == symbol) & (pl.col("w") == window)).row(0, named=True)
        truth = want.filter((pl.col("symbol") == symbol) & (pl.col("w") == window)).row(0, named=True)
        assert row["gap"] != "feed", (row, job.output()[-3000:])
        assert (row["trades"], round(row["volume"], 9)) == (truth["trades"], round(truth["volume"], 9))
        # the window began before the feed's first trade: the history supplied its start
        assert any(int(m["data"]["t"]) < live_first for m in server.missed if m["data"]["s"] == symbol)
    # one fill per symbol, each making at least the window holding the start whole
    assert re.search(r"'complete': 2", job.output()) and re.search(r"'windows': [2-9]", job.output()), \
        job.output()[-2000:]
