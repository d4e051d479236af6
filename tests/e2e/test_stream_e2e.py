"""`mdstream stream --source binance` end to end: a real job subprocess against a local server replaying the
real Binance recordings (moved into the near future, see stream_helpers), its DuckDB output against the
backfill of the same trades, through a server outage and through a `kill -9` of the job itself."""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta

import polars as pl
import pytest

from mdstream.contract import columns as c
from mdstream.contract import timeframes as tfm
from support.stream_helpers import (
    KEY,
    StreamJob,
    backfill_of,
    dense_grid,
    latest_candles,
    one_row_per_key,
    read_db,
    recorded_ticks,
    utc_ms,
    write_shifted,
)
from support.ws_replay import ReplayServer

LATENESS = 0.2  # seconds; the recordings arrive in event-time order, so no trade is ever late
VALUES = [c.OPEN, c.HIGH, c.LOW, c.CLOSE, c.VOLUME, c.QUOTE_VOLUME, c.BUY_VOLUME, c.SELL_VOLUME, c.TRADES, c.VWAP,
          c.FIRST_TRADE_AT, c.LAST_TRADE_AT]
COMPARED = [*VALUES, c.GAP, *c.FEATURE_COLUMNS]
# features computed from closes alone: after a restart they continue exactly when the closes do
CLOSE_FEATURES = ["sma_5", "sma_10", "sma_20", "ema_5", "ema_10", "ema_20", "wma_5", "momentum_3", "momentum_5",
                  "velocity", "acceleration", "log_return", "volatility_5", "volatility_10", "rsi_5", "bb_pctb_20",
                  "macd", "macd_signal", "macd_hist"]
WIDTH = pl.col(c.TIMEFRAME).replace_strict({tf: tfm.duration_us(tf) for tf in tfm.ALL_TIMEFRAMES})

pytestmark = pytest.mark.timeout(90)


@pytest.fixture()
def spot_files(real_data):
    """The four recorded spot files (BTCUSDT and ETHUSDT, both days)."""
    return sorted((real_data / "binance_ws").glob("spot_*usdt_2024080?.gz"))


def recording(spot_files, tmp_path, start: str, end: str):
    """(shifted recording file, its ticks) of the trades with T in [start, end) (ISO, UTC)."""
    path = tmp_path / "spot_shifted.gz"
    write_shifted(spot_files, path, start_ms=utc_ms(start), end_ms=utc_ms(end))
    return path, recorded_ticks(path)


def closed_by(candles: pl.DataFrame, watermark) -> pl.DataFrame:
    """Rows of windows that end at or before `watermark`."""
    end = pl.col(c.TIMESTAMP_IN) + pl.duration(microseconds=WIDTH)
    return candles.filter(end <= pl.lit(watermark).cast(candles.schema[c.TIMESTAMP_IN]))


def assert_same(expected: pl.DataFrame, actual: pl.DataFrame, columns=COMPARED, rel: float = 1e-9) -> None:
    """Same windows, and in each the same values (floats to `rel` relative)."""
    missing = expected.join(actual, on=KEY, how="anti")
    extra = actual.join(expected, on=KEY, how="anti")
    assert missing.height == 0, ("windows missing from the stream", missing.select(KEY))
    assert extra.height == 0, ("windows the reference does not have", extra.select(KEY))
    joined = expected.join(actual, on=KEY, suffix="_s")
    for col in columns:
        a, b = pl.col(col), pl.col(col + "_s")
        differ = a.is_null() != b.is_null()
        if joined.schema[col] == pl.Float64:
            differ = differ | ((a - b).abs() > rel * pl.max_horizontal(a.abs(), b.abs()) + 1e-12).fill_null(False)
        else:
            differ = differ | (a != b).fill_null(False)
        bad = joined.filter(differ)
        assert bad.height == 0, (col, bad.select(*KEY[1:], col, col + "_s").head(8).rows())


def beyond(candles: pl.DataFrame, expected: pl.DataFrame, last) -> pl.DataFrame:
    """`candles` without the windows after the recording's last trade that the job closed by the wall clock while
    the server sat silent (a quiet live feed closes windows up to a bounded distance past its last trade); those
    hold no trade and are quiet (or feed, once the silence is noticed)."""
    extra = candles.join(expected.select(KEY), on=KEY, how="anti")
    end = pl.col(c.TIMESTAMP_IN) + pl.duration(microseconds=WIDTH)
    late = extra.filter(end > pl.lit(last).cast(candles.schema[c.TIMESTAMP_IN]))
    assert late.height == extra.height, ("windows the reference does not have", extra.join(late, on=KEY, how="anti").select(KEY))
    assert (late.filter(pl.col(c.TIMESTAMP_IN) > pl.lit(last).cast(candles.schema[c.TIMESTAMP_IN]))[c.TRADES] == 0).all()
    return candles.join(late.select(KEY), on=KEY, how="anti")


def assert_contract(db) -> pl.DataFrame:
    """What every reader may rely on: one row per key, no duplicate stored (key, revision), a dense grid,
    gap values from the contract, revision >= 0; returns candles_latest."""
    stored = read_db(db, "SELECT exchange, symbol, timeframe, timestamp_in, revision, count(*) AS n FROM candles "
                         "GROUP BY ALL HAVING count(*) > 1")
    assert stored.height == 0, stored
    candles = latest_candles(db)
    one_row_per_key(candles)
    dense_grid(candles)
    assert set(candles[c.GAP].drop_nulls().unique()) <= {c.GAP_QUIET, c.GAP_FEED}
    assert candles[c.REVISION].min() >= 0
    assert (candles.filter(pl.col(c.GAP) == c.GAP_QUIET)[c.TRADES] == 0).all()
    return candles


async def stop_all(server: ReplayServer, *jobs: StreamJob) -> None:
    """Never leave a job or the server behind, whatever the test did."""
    for job in jobs:
        if job.proc is not None and job.proc.returncode is None:
            job.proc.kill()
            await job.proc.wait()
    await server.stop()


def test_stream_job_equals_the_backfill(spot_files, tmp_path):
    """Two minutes around midnight (every timeframe closes a window): SIGTERM after the last trade."""
    path, ticks = recording(spot_files, tmp_path, "2024-08-08T23:58:30", "2024-08-09T00:00:30")
    db = tmp_path / "x.duckdb"

    async def scenario():
        server = ReplayServer([path])
        job = StreamJob(db)
        try:
            await server.start()
            await job.start(server.url)
            stats = await job.wait_ticks(ticks.height)
            assert server.sent == ticks.height
            code = await job.stop(signal.SIGTERM)
            return stats, code, job
        finally:
            await stop_all(server, job)

    stats, code, job = asyncio.run(scenario())
    assert code == 0, job.output()
    assert stats["ticks"] == ticks.height and stats["duplicates"] == 0 and stats["quarantined"] == 0
    candles = assert_contract(db)
    assert candles[c.REVISION].max() == 0, "trades arrive in event-time order: nothing may be revised"
    first = ticks[c.TIMESTAMP].min()
    # startup: the window holding the first trade is partial (what came before the connection is unknown)
    expected = backfill_of(ticks, [(first - timedelta(days=1), first)])
    expected = closed_by(expected, ticks[c.TIMESTAMP].max() - timedelta(seconds=LATENESS))
    assert set(expected[c.TIMEFRAME]) == set(tfm.ALL_TIMEFRAMES)
    assert_same(expected, beyond(candles, expected, ticks[c.TIMESTAMP].max()))
    feed = candles.filter(pl.col(c.GAP) == c.GAP_FEED)
    assert feed.height >= 6 and feed.group_by(c.SERIES_KEY).len()["len"].max() == 1


def test_server_outage_marks_feed_and_loses_or_doubles_nothing(spot_files, tmp_path):
    """The server drops every connection mid-stream, stays down a while, and comes back re-sending 300 trades."""
    path, ticks = recording(spot_files, tmp_path, "2024-08-08T23:58:30", "2024-08-09T00:00:30")
    db = tmp_path / "x.duckdb"
    cut, overlap = 3500, 300

    async def scenario():
        server = ReplayServer([path])
        job = StreamJob(db)
        try:
            await server.start(limit=cut)
            await job.start(server.url)
            await job.wait_ticks(cut)
            await server.stop()
            await asyncio.sleep(1.0)  # the job retries against a closed port meanwhile
            await server.start(overlap=overlap)
            stats = await job.wait_ticks(ticks.height)
            code = await job.stop(signal.SIGTERM)
            return stats, code, server.sent, list(server.paths), job
        finally:
            await stop_all(server, job)

    stats, code, sent, paths, job = asyncio.run(scenario())
    assert code == 0, job.output()
    assert len(paths) >= 2 and sent == ticks.height + overlap, "the server must have re-sent the overlap"
    assert stats["ticks"] == ticks.height, "re-sent trades were counted twice, or trades were lost"
    candles = assert_contract(db)
    first = ticks[c.TIMESTAMP].min()
    # the outage runs from the last trade seen before the drop to the first new one after the reconnect
    down, up = ticks[c.TIMESTAMP][cut - 1], ticks[c.TIMESTAMP][cut]
    expected = backfill_of(ticks, [(first - timedelta(days=1), first), (down, up)])
    expected = closed_by(expected, ticks[c.TIMESTAMP].max() - timedelta(seconds=LATENESS))
    # The recording's clock stood still while the server was down, the wall clock did not: windows the wall clock
    # closed after the last trade (quiet, then feed once the drop was seen) are revised by the trades re-sent on
    # reconnect. Only windows of the outage may be revised, and they stay feed.
    revised = candles.filter(pl.col(c.REVISION) > 0)
    assert (revised[c.GAP] == c.GAP_FEED).all(), revised.select(KEY, c.GAP, c.REVISION)
    outage = expected.filter((pl.col(c.GAP) == c.GAP_FEED) & (pl.col(c.TIMESTAMP_IN) > first))
    # (the outage, at 23:59:2x, lies in the first 5m and longer windows anyway)
    assert outage.height >= 4 and set(outage[c.TIMEFRAME]) == {"15s", "1m"}
    assert_same(expected, beyond(candles, expected, ticks[c.TIMESTAMP].max()))


def test_kill_9_then_restart_marks_feed_and_continues_features(spot_files, tmp_path):
    """The job dies by SIGKILL after 5.5 minutes of trades; a new job on the same file takes the next 1.5."""
    path, ticks = recording(spot_files, tmp_path, "2024-08-08T23:54:00", "2024-08-09T00:01:05")
    db = tmp_path / "x.duckdb"
    # mid-window, so the window open at the kill still ends with trades the new job receives
    kill_at = ticks[c.TIMESTAMP][0].replace(hour=23, minute=59, second=37, microsecond=0)
    cut = ticks.filter(pl.col(c.TIMESTAMP) < kill_at).height

    async def scenario():
        server = ReplayServer([path])
        first_job, second_job = StreamJob(db, name="first"), StreamJob(db, name="second")
        try:
            await server.start(limit=cut)
            await first_job.start(server.url)
            await first_job.wait_ticks(cut)
            assert await first_job.stop(signal.SIGKILL) == -signal.SIGKILL
            crashed = latest_candles(db)  # what a reader sees right after the crash
            server.limit = None  # the market goes on: the new job gets the trades from the kill on
            await second_job.start(server.url)
            stats = await second_job.wait_ticks(ticks.height - cut)
            code = await second_job.stop(signal.SIGTERM)
            return crashed, stats, code, second_job
        finally:
            await stop_all(server, first_job, second_job)

    crashed, stats, code, job = asyncio.run(scenario())
    assert code == 0, job.output()
    assert stats["ticks"] == ticks.height - cut
    first, resumed = ticks[c.TIMESTAMP].min(), ticks[c.TIMESTAMP][cut]
    reference = backfill_of(ticks, [(first - timedelta(days=1), first)])
    # every window the killed job had closed was flushed, is durable and equals the backfill
    assert crashed.filter(pl.col(c.TIMEFRAME) == "15s").height >= 2 * 20
    assert_same(closed_by(reference, ticks[c.TIMESTAMP][cut - 1] - timedelta(seconds=LATENESS)), crashed)
    candles = assert_contract(db)
    before = candles.join(crashed.select(KEY), on=KEY, how="semi")
    assert_same(crashed, before, [*COMPARED, c.TIMESTAMP_OUT])  # the new job rewrote none of them
    after = candles.join(crashed.select(KEY), on=KEY, how="anti")
    # the windows open when the job died, up to the one holding the first trade after the restart, are feed
    is_feed = pl.col(c.TIMESTAMP_IN) <= pl.lit(resumed).cast(candles.schema[c.TIMESTAMP_IN])
    assert (after.filter(is_feed)[c.GAP] == c.GAP_FEED).all()
    assert after.filter(is_feed).height >= 2 * 3  # 15s, 1m, 5m of both series at least
    expected = closed_by(reference, ticks[c.TIMESTAMP].max() - timedelta(seconds=LATENESS))
    after = beyond(after, expected, ticks[c.TIMESTAMP].max())
    complete = after.filter(~is_feed)
    assert complete.height and complete[c.GAP].null_count() + (complete[c.GAP] == c.GAP_QUIET).sum() == complete.height
    assert_same(expected.join(complete.select(KEY), on=KEY, how="semi"), complete, VALUES)
    # warm start: no 19-window warm-up after the restart; close-only features go on as if nothing happened
    restart_15s = after.filter(pl.col(c.TIMEFRAME) == "15s").sort(c.TIMESTAMP_IN).group_by(c.SYMBOL).first()
    assert restart_15s["sma_20"].null_count() == 0 and restart_15s["ema_20"].null_count() == 0
    assert_same(expected.join(after.select(KEY), on=KEY, how="semi"), after, [c.CLOSE, *CLOSE_FEATURES])


def test_startup_gap_opened_and_closed_in_one_batch_marks_only_the_first_window():
    """The source opens the startup gap on connect and closes it with the first trade; both usually reach the
    engine in one batch, and the open copy must not survive there (it would mark every later window feed)."""
    from datetime import datetime, timezone

    from mdstream.contract.feed import GAP_STARTUP, FeedGap
    from mdstream.engine.incremental import CandleEngine

    t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
    at = [t0 + timedelta(seconds=s) for s in (5, 20, 35, 50)]
    ticks = pl.DataFrame({
        c.EXCHANGE: "binance", c.SYMBOL: "BTCUSDT", c.TIMESTAMP: at, c.LOCAL_TIMESTAMP: at,
        c.ID: [str(i) for i in range(4)], c.SIDE: "buy", c.PRICE: [100.0, 101.0, 102.0, 103.0], c.AMOUNT: 1.0,
    }).with_columns(pl.col(c.TIMESTAMP, c.LOCAL_TIMESTAMP).dt.cast_time_unit("us"))
    engine = CandleEngine(timeframes=["15s"], lateness=timedelta(0))
    opened = FeedGap("binance", ("BTCUSDT",), t0 - timedelta(hours=1), None, GAP_STARTUP)
    engine.add_gaps([opened, FeedGap(opened.exchange, opened.symbols, opened.start, at[0], GAP_STARTUP)])
    out = engine.step(ticks, now=at[-1])
    assert out.candles.sort(c.TIMESTAMP_IN)[c.GAP].to_list() == [c.GAP_FEED, None, None]
