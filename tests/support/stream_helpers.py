"""Helpers of the stream end-to-end tests: recordings moved into the near future, the job as a subprocess,
the backfill reference of the same trades, and reads of the job's DuckDB file after it exited.

The Binance source closes windows on max(latest event time, wall clock) - lateness. Recordings from the past
would close every window at once, so the trades are shifted forward by whole days (UTC window alignment is
kept) until they lie ahead of the wall clock: then event time alone drives the watermark, as in a replay.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import orjson
import polars as pl

from mdstream.contract import columns as c
from mdstream.contract.schema import CANDLE_SCHEMA, conform
from mdstream.inputs.decode import strip_trade_id
from mdstream.kernel import gaps as gp
from mdstream.kernel.candles import candles_from_ticks
from mdstream.kernel.features import STATE_COLUMNS, add_features
from mdstream.sinks.duckdb_schema import connect
from mdstream.sources.replay import load
from support.ws_replay import load_trade_messages

DAY_MS = 86_400_000
KEY = [*c.SERIES_KEY, c.TIMESTAMP_IN]
REPO = Path(__file__).resolve().parents[2]


def utc_ms(text: str) -> int:
    """Milliseconds since the epoch of an ISO time taken as UTC, e.g. '2024-08-08T23:59:00'."""
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


def write_shifted(files: list[Path], out: Path, *, start_ms: int, end_ms: int, lead_ms: int = 600_000) -> int:
    """Write the trade messages of `files` with T in [start_ms, end_ms) to `out` (recording format), their
    T, E and receive times moved forward by whole days so the first lies >= `lead_ms` after the wall clock;
    returns the shift in ms."""
    messages = [(ns, orjson.loads(raw)) for ns, _, raw in load_trade_messages(files)]
    messages = [(ns, m) for ns, m in messages if start_ms <= m["data"]["T"] < end_ms]
    first = min(m["data"]["T"] for _, m in messages)
    now_ms = int(time.time() * 1000)
    days = max(0, -(-(now_ms + lead_ms - first) // DAY_MS))  # ceil: the fewest whole days that suffice
    shift = days * DAY_MS
    with gzip.open(out, "wt", encoding="utf-8") as handle:
        for ns, m in messages:
            m["data"]["T"] += shift
            m["data"]["E"] += shift
            handle.write(f"{ns + shift * 1_000_000} {orjson.dumps(m).decode()}\n")
    return shift


def recorded_ticks(path: Path) -> pl.DataFrame:
    """The ticks of a recording, decoded by the project's own reader (no rejected rows expected)."""
    ticks, bad = load([path], now=datetime.now(timezone.utc))
    assert bad.height == 0, bad
    return strip_trade_id(ticks)


def backfill_of(ticks: pl.DataFrame, gaps: list[tuple[datetime, datetime]] = ()) -> pl.DataFrame:
    """Candles with features of `ticks` as the backfill makes them (dense grid from the first trade on), with
    gap = feed on every window overlapping one of the [start, end] intervals `gaps` (of every series)."""
    series = ticks.select(c.EXCHANGE, c.SYMBOL).unique()
    known = pl.DataFrame(
        {gp.GAP_START: [g[0] for g in gaps], gp.GAP_END: [g[1] for g in gaps], gp.GAP_REASON: ["known"] * len(gaps)},
        schema={k: gp.GAP_SCHEMA[k] for k in (gp.GAP_START, gp.GAP_END, gp.GAP_REASON)},
    )
    feed = series.join(known, how="cross").select(list(gp.GAP_SCHEMA)).lazy()
    candles = candles_from_ticks(ticks, now=datetime.now(timezone.utc), feed_gaps=feed)
    featured = add_features(candles).collect(engine="in-memory").drop(STATE_COLUMNS)
    return conform(featured, CANDLE_SCHEMA)


def read_db(path: Path, sql: str) -> pl.DataFrame:
    """Result of one query against the job's DuckDB file, opened read-only (only once the job has exited)."""
    con = connect(path, read_only=True)
    try:
        return pl.from_arrow(con.sql(sql).to_arrow_table())
    finally:
        con.close()


def latest_candles(path: Path) -> pl.DataFrame:
    """The `candles_latest` view, in the candle schema."""
    return conform(read_db(path, "SELECT * FROM candles_latest"), CANDLE_SCHEMA)


class StreamJob:
    """`python -m mdstream stream --source binance` against a local server, as a real subprocess."""

    def __init__(self, db: Path, *, symbols: str = "BTCUSDT,ETHUSDT", lateness: float = 0.2, name: str = "job",
                 extra: tuple[str, ...] = ("--max-skew", str(10 * 86_400))):
        """`extra` options; by default a clock skew of 10 days is allowed, as write_shifted moves recordings up to
        a few days ahead of the wall clock (a job with the default 5 s would quarantine them as implausible)."""
        self.checkpoint = db.with_name(f"{name}.checkpoint.json")
        self.log = db.with_name(f"{name}.log")
        self.args = [
            sys.executable, "-m", "mdstream", "stream", "--source", "binance", "--symbols", symbols,
            "--duckdb", str(db), "--checkpoint", str(self.checkpoint), "--quiet", "--lateness", str(lateness),
            "--flush-interval", "0.1", *extra,
        ]
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, url: str) -> StreamJob:
        """Launch the job against the server at `url` (output to a log file, shown when a check fails)."""
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with open(self.log, "wb") as out:
            self.proc = await asyncio.create_subprocess_exec(*self.args, "--url", url, stdout=out, stderr=out, env=env)
        return self

    def output(self) -> str:
        """What the job printed so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stats(self) -> dict:
        """Counters of the last checkpoint (written after each durable flush), {} before the first."""
        try:
            return json.loads(self.checkpoint.read_text())["stats"]
        except (OSError, ValueError, KeyError):
            return {}

    async def wait_ticks(self, count: int, timeout: float = 15.0) -> dict:
        """Wait until a checkpoint says `count` ticks were processed and flushed; returns its counters."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = self.stats()
            if stats.get("ticks", 0) >= count:
                return stats
            if self.proc is not None and self.proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        raise AssertionError(f"job reached {self.stats().get('ticks')} of {count} ticks; output:\n{self.output()}")

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Send `sig` and wait for the exit; returns the exit code."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(f"job did not exit on signal {sig}; output:\n{self.output()}") from None


def one_row_per_key(candles: pl.DataFrame) -> None:
    """Assert a reader sees each (exchange, symbol, timeframe, timestamp_in) once."""
    dup = candles.group_by(KEY).len().filter(pl.col("len") > 1)
    assert dup.height == 0, dup


def dense_grid(candles: pl.DataFrame) -> None:
    """Assert every series is a gap-free run of windows of its timeframe."""
    from mdstream.contract import timeframes as tfm

    steps = candles.sort(KEY).with_columns(
        pl.col(c.TIMESTAMP_IN).diff().over(c.SERIES_KEY).dt.total_microseconds().alias("_step"),
        pl.col(c.TIMEFRAME).replace_strict({tf: tfm.duration_us(tf) for tf in tfm.ALL_TIMEFRAMES}).alias("_width"),
    )
    holes = steps.filter(pl.col("_step").is_not_null() & (pl.col("_step") != pl.col("_width")))
    assert holes.height == 0, holes.select(*KEY, "_step")
