"""Stream engine throughput, per-batch overhead, emit latency and memory, against floors from the same run.

    python -m benchmarks.stream [--symbols 100] [--ticks 2000000] [--latency-seconds 80]

Prints
  (a) decode of raw Binance combined-stream trade messages (msgs/s) vs orjson.loads alone (target >= 200k/s);
  (b) batch -> candles -> features through the engine as fast as possible (ticks/s; target >= 1M/s) vs
      polars group_by of the same ticks into 15s windows (the floor), at the live row cap (50k) and at the
      size an as-fast-as-possible replay feeds (200k);
  per-batch overhead of a step where no window closes (target <= 2 ms at 100 symbols);
  p50/p99 emit latency past the lateness of a real-time run (simulated market on the wall clock, the six default
  timeframes, lateness 0 and 1 s; target p99 <= lateness + 20 ms);
  resident memory at the start, middle and end of (b) (target: flat).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import orjson
import polars as pl

from mdstream.contract import columns as c
from mdstream.contract.schema import TICK_SCHEMA
from mdstream.engine.incremental import CandleEngine
from mdstream.inputs.decode import decode_binance, raw_frame

START = datetime(2024, 1, 1, tzinfo=timezone.utc)


def market(symbols: int, ticks: int, seconds: float, seed: int = 3) -> pl.DataFrame:
    """`ticks` trades of `symbols` symbols spread over `seconds` of event time, in time order."""
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.uniform(0, seconds * 1e6, ticks).astype(np.int64)) + int(START.timestamp() * 1e6)
    sym = rng.integers(0, symbols, ticks)
    price = 100 + np.round(np.cumsum(rng.normal(0, 0.01, ticks)), 2)
    return pl.DataFrame({
        c.EXCHANGE: ["binance"] * ticks,
        c.SYMBOL: [f"S{i:03d}USDT" for i in sym],
        c.TIMESTAMP: ts, c.LOCAL_TIMESTAMP: ts + 1000, c.ID: (np.arange(ticks) + 1).astype(str),
        c.SIDE: np.where(rng.random(ticks) < 0.5, "buy", "sell"), c.PRICE: price, c.AMOUNT: rng.lognormal(-3, 1, ticks),
    }).with_columns(pl.col(c.TIMESTAMP, c.LOCAL_TIMESTAMP).cast(pl.Datetime("us", "UTC"))).cast(TICK_SCHEMA)


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096 / 1e6


def decode_bench(ticks: pl.DataFrame, chunk: int = 500) -> tuple[float, float]:
    """(msgs/s of decode_binance in `chunk`-message calls, msgs/s of orjson.loads alone)."""
    rows = ticks.head(200_000).iter_rows(named=True)
    messages = [
        orjson.dumps({"stream": f"{r[c.SYMBOL].lower()}@trade", "data": {
            "e": "trade", "E": int(r[c.TIMESTAMP].timestamp() * 1000), "s": r[c.SYMBOL], "t": int(r[c.ID]),
            "p": f"{r[c.PRICE]:.2f}", "q": f"{r[c.AMOUNT]:.5f}", "T": int(r[c.TIMESTAMP].timestamp() * 1000),
            "m": r[c.SIDE] == "sell", "M": True}}).decode()
        for r in rows
    ]
    chunks = [messages[i:i + chunk] for i in range(0, len(messages), chunk)]
    now = datetime.now(timezone.utc)

    def run(fn) -> float:
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            for part in chunks:
                fn(part)
            best = min(best, time.perf_counter() - start)
        return len(messages) / best

    decoded = run(lambda part: decode_binance(raw_frame(part, 0), exchange="binance", source="bench", now=now))
    floor = run(lambda part: [orjson.loads(m) for m in part])
    return decoded, floor


def engine_bench(ticks: pl.DataFrame, batch_rows: int) -> tuple[float, float, list[float]]:
    """(ticks/s through the engine, seconds of the floor group_by, RSS samples) feeding batches in time order."""
    start = time.perf_counter()
    ticks.group_by(c.SYMBOL, pl.col(c.TIMESTAMP).dt.truncate("15s")).agg(
        pl.col(c.PRICE).first().alias("o"), pl.col(c.PRICE).max().alias("h"), pl.col(c.PRICE).min().alias("l"),
        pl.col(c.PRICE).last().alias("c"), pl.col(c.AMOUNT).sum())
    floor = time.perf_counter() - start
    engine = CandleEngine(lateness=timedelta(seconds=0))
    samples = []
    start = time.perf_counter()
    for i in range(0, ticks.height, batch_rows):
        batch = ticks.slice(i, batch_rows)
        engine.step(batch, now=batch[c.TIMESTAMP].max())
        if i % (ticks.height // 4 // batch_rows * batch_rows or batch_rows) == 0:
            samples.append(rss_mb())
    engine.step(ticks.clear(), now=ticks[c.TIMESTAMP].max(), final=True)
    samples.append(rss_mb())
    return ticks.height / (time.perf_counter() - start), floor, samples


def overhead_bench(symbols: int) -> float:
    """Median ms of a step with one tick per symbol where no window closes (after a warm-up)."""
    engine = CandleEngine(lateness=timedelta(seconds=1))
    small = market(symbols, symbols * 400, 600.0, seed=9)
    engine.step(small.head(symbols * 200), now=small[c.TIMESTAMP][symbols * 200 - 1])
    base = small[c.TIMESTAMP][symbols * 200 - 1]
    # Ticks inside the current 15s window, clock inside it too: nothing closes.
    window_end = datetime.fromtimestamp((int(base.timestamp()) // 15 + 1) * 15, tz=timezone.utc)
    steps = []
    for k in range(200):
        t = window_end - timedelta(seconds=14) + timedelta(milliseconds=50 * k)
        batch = small.head(symbols).with_columns(pl.lit(t).cast(pl.Datetime("us", "UTC")).alias(c.TIMESTAMP),
                                                 (pl.col(c.ID) + f"x{k}").alias(c.ID))
        begin = time.perf_counter()
        engine.step(batch, now=t)
        steps.append((time.perf_counter() - begin) * 1000)
    return statistics.median(steps[20:])


def latency_bench(symbols: int, seconds: float, flush_interval: float, lateness: float) -> list[float]:
    """latency_ms - lateness (ms) of every first emission of a real-time run (simulated market on the wall clock,
    the default six timeframes)."""
    from mdstream.contract.clock import WallClock
    from mdstream.jobs.stream import StreamOptions, StreamRunner
    from mdstream.sinks.duckdb import DuckDBSink
    from mdstream.sources.synthetic import SyntheticSource

    names = [f"S{i:03d}USDT" for i in range(symbols)]
    source = SyntheticSource(names, seed=1, rate=2.0, flush_interval=flush_interval)
    with tempfile.TemporaryDirectory() as tmp:
        sink = DuckDBSink(Path(tmp) / "latency.duckdb")
        opts = StreamOptions(lateness=lateness, duration=seconds, warm_start=False)
        asyncio.run(StreamRunner(source, sink, WallClock(), opts).run())
        rows = sink.con.sql("SELECT latency_ms FROM candles WHERE revision = 0").fetchall()
        sink.close()
    return [r[0] - lateness * 1000 for r in rows]


def main() -> None:
    """Run every measurement and print the figures with their targets."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--ticks", type=int, default=2_000_000)
    parser.add_argument("--batch-rows", type=int, default=50_000)
    parser.add_argument("--latency-seconds", type=float, default=80.0)
    parser.add_argument("--flush-interval", type=float, default=0.25)
    parser.add_argument("--rate", type=float, default=500.0, help="trades per second of event time, all symbols")
    args = parser.parse_args()
    ticks = market(args.symbols, args.ticks, seconds=args.ticks / args.rate)

    decoded, floor = decode_bench(ticks)
    print(f"(a) decode Binance trade JSON   : {decoded:,.0f} msgs/s   (orjson.loads alone {floor:,.0f}/s, "
          f"ratio {floor / decoded:.1f}x; target >= 200,000)")
    for rows in sorted({args.batch_rows, 200_000}):
        rate, group_s, rss = engine_bench(ticks, rows)
        print(f"(b) batch -> candles -> features: {rate:,.0f} ticks/s   ({args.ticks:,} ticks, {args.symbols} symbols, "
              f"{args.rate:.0f} trades/s of event time, 6 timeframes, {rows:,}-row batches; "
              f"floor group_by 15s {args.ticks / group_s:,.0f} ticks/s; target >= 1,000,000)")
        print(f"    memory (RSS MB) through (b)  : {' -> '.join(f'{v:.0f}' for v in rss)}")
    print(f"per-batch overhead, no close    : {overhead_bench(args.symbols):.2f} ms at {args.symbols} symbols (target <= 2)")
    if args.latency_seconds > 0:
        for lateness in (0.0, 1.0):
            lat = sorted(latency_bench(args.symbols, args.latency_seconds, args.flush_interval, lateness))
            if lat:
                p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
                print(f"emit latency, lateness {lateness:.1f} s  : lateness + p50 {p50:.0f} ms, p99 {p99:.0f} ms over "
                      f"{len(lat)} windows, {args.symbols} symbols, 6 timeframes (target p99 <= lateness + 20 ms)")

if __name__ == "__main__":
    main()
