"""Operations users run day after day, through the CLI, on DuckDB and Parquet: day N+1 after day N into the same
store, a retried day, shards of different days, a stream after a backfill and a backfill after a stream."""

from __future__ import annotations

import json
import threading
from datetime import date

import polars as pl
import pytest
from click.testing import CliRunner

from mdstream.cli import main
from mdstream.contract import columns as c
from mdstream.sinks.parquet import read_candles, scan
from support.day_files import day_file, day_files

D1, D2, D3 = date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)
SINKS = ["duckdb", "parquet"]


def run(*args: str) -> str:
    """Run mdstream in-process; the output, asserting exit code 0."""
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def sink_args(kind: str, tmp_path) -> list[str]:
    """Flags selecting a store under tmp_path."""
    if kind == "duckdb":
        return ["--sink", "duckdb", "--duckdb", str(tmp_path / "m.duckdb")]
    return ["--sink", "parquet", "--parquet", str(tmp_path / "pq")]


def candles(kind: str, tmp_path) -> pl.DataFrame:
    """candles_latest of the store (key, trades, close, rsi_5), sorted."""
    cols = [c.SYMBOL, c.TIMEFRAME, c.TIMESTAMP_IN, c.TRADES, c.CLOSE, "rsi_5"]
    if kind == "duckdb":
        out = run("query", "--duckdb", str(tmp_path / "m.duckdb"), "--format", "json",
                  f"SELECT {', '.join(cols)}, timestamp_in::VARCHAR AS t FROM candles_latest")
        frame = pl.DataFrame(json.loads(out)).with_columns(
            pl.col("t").str.to_datetime(time_zone="UTC").alias(c.TIMESTAMP_IN)).drop("t")
        raw = json.loads(run("query", "--duckdb", str(tmp_path / "m.duckdb"), "--format", "json",
                             "SELECT count(*) AS n FROM candles"))[0]["n"]
        assert raw == frame.height, "a key stored twice"
        return frame.select(cols).sort(cols[:3])
    latest = read_candles(tmp_path / "pq").collect()
    assert latest.height == scan(tmp_path / "pq", "candles").collect().height, "a key stored twice"
    return latest.select(cols).sort(cols[:3])


def traded_per_day(frame: pl.DataFrame) -> dict[date, int]:
    """Trades per UTC day from the 1d candles."""
    daily = frame.filter(pl.col(c.TIMEFRAME) == "1d")
    return dict(zip(daily[c.TIMESTAMP_IN].dt.date().to_list(), daily[c.TRADES].to_list()))


@pytest.mark.parametrize("kind", SINKS)
def test_day_after_day_into_the_same_store_continues_the_series(kind, tmp_path):
    files = day_files(tmp_path / "in", D1, 3)
    for path in files:  # a daily cron job: one process per day
        run("backfill", "--input", str(path), "--quiet", "--store-ticks", *sink_args(kind, tmp_path))
    got = candles(kind, tmp_path)
    assert traded_per_day(got) == {D1: 5_000, D2: 5_000, D3: 5_000}
    one = got.filter(pl.col(c.TIMEFRAME) == "1m")
    assert one[c.TIMESTAMP_IN].is_unique().all()
    # Each day file's grid runs to its midnight.
    last = one.group_by(pl.col(c.TIMESTAMP_IN).dt.date().alias("day")).agg(pl.col(c.TIMESTAMP_IN).max().dt.strftime("%H:%M"))
    assert sorted(last.rows()) == [(D1, "23:59"), (D2, "23:59"), (D3, "23:59")]
    if kind == "duckdb":  # it reads its tail back: one grid and one feature series across midnight
        assert one[c.TIMESTAMP_IN].diff().drop_nulls().dt.total_seconds().max() == 60
        midnight = one.filter(pl.col(c.TIMESTAMP_IN).dt.date() == D2).row(0, named=True)
        assert midnight["rsi_5"] is not None


@pytest.mark.parametrize("kind", SINKS)
def test_a_retried_day_replaces_itself(kind, tmp_path):
    files = day_files(tmp_path / "in", D1, 2)
    for path in [*files, files[1], files[0], files[1]]:
        run("backfill", "--input", str(path), "--quiet", *sink_args(kind, tmp_path))
    got = candles(kind, tmp_path)
    assert traded_per_day(got) == {D1: 5_000, D2: 5_000}


def test_duckdb_shards_of_different_days_one_after_the_other(tmp_path):
    files = day_files(tmp_path / "in", D1, 4)
    # Shard i takes days i and i+2: written into one file, in either order.
    for shard in ([files[1], files[3]], [files[0], files[2]]):
        run("backfill", *[f for p in shard for f in ("--input", str(p))], "--quiet", *sink_args("duckdb", tmp_path))
    assert traded_per_day(candles("duckdb", tmp_path)) == {date(2024, 1, d): 5_000 for d in (1, 2, 3, 4)}


def test_parquet_shards_of_different_days_at_the_same_time(tmp_path):
    files = day_files(tmp_path / "in", D1, 4)
    results = []

    def shard(paths):
        results.append(CliRunner().invoke(main, ["backfill", *[f for p in paths for f in ("--input", str(p))],
                                                 "--quiet", *sink_args("parquet", tmp_path)]))

    threads = [threading.Thread(target=shard, args=(p,)) for p in ([files[0], files[2]], [files[1], files[3]])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.exit_code for r in results] == [0, 0], [r.output for r in results]
    assert traded_per_day(candles("parquet", tmp_path)) == {date(2024, 1, d): 5_000 for d in (1, 2, 3, 4)}
    assert not (tmp_path / "pq" / ".staging").exists()


@pytest.mark.parametrize("kind", SINKS)
def test_stream_after_backfill_and_backfill_after_stream(kind, tmp_path):
    first, third = day_file(tmp_path / "in", D1), day_file(tmp_path / "in", D3)
    second = day_file(tmp_path / "in", D2, span_s=3_600)  # the streamed day: trades in its first hour
    run("backfill", "--input", str(first), "--quiet", *sink_args(kind, tmp_path))
    run("stream", "--source", "replay", "--input", str(second), "--speed", "0", "--quiet", "--lateness", "0",
        *sink_args(kind, tmp_path))
    run("backfill", "--input", str(third), "--quiet", *sink_args(kind, tmp_path))
    got = candles(kind, tmp_path)
    assert traded_per_day(got) == {D1: 5_000, D2: 5_000, D3: 5_000}
    # A backfill of the streamed day replaces what the stream wrote: one row per key, same trades.
    run("backfill", "--input", str(second), "--quiet", *sink_args(kind, tmp_path))
    again = candles(kind, tmp_path)
    assert traded_per_day(again) == {D1: 5_000, D2: 5_000, D3: 5_000}
    second_day = again.filter((pl.col(c.TIMEFRAME) == "1m") & (pl.col(c.TIMESTAMP_IN).dt.date() == D2))
    assert second_day.height == 1440  # the day file's grid, to its midnight, each minute once


def test_two_symbols_two_days_in_one_call_commit_day_by_day(tmp_path):
    paths = [day_file(tmp_path / "in", d, symbol=s, n=2_000) for s in ("ETHUSDT", "BTCUSDT") for d in (D2, D1)]
    out = run("backfill", *[f for p in paths for f in ("--input", str(p))], *sink_args("duckdb", tmp_path))
    lines = [line for line in out.splitlines() if " ticks -> " in line]
    # Series by series, each in day order, each day reported as it is committed.
    assert [line.split(":")[0] for line in lines] == [
        "binance-futures BTCUSDT 2024-01-01", "binance-futures BTCUSDT 2024-01-02",
        "binance-futures ETHUSDT 2024-01-01", "binance-futures ETHUSDT 2024-01-02"]
