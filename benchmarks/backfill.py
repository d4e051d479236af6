"""Backfill throughput against a floor measured in the same run.

Generates a realistic 3,000,000-trade day (Tardis trades .csv.gz), then times
  (a) polars.read_csv of that file alone: the floor;
  (b) the full backfill of that file: read + validate + 6 timeframes + all features + DuckDB write;
and prints both and the ratio (target <= 1.5 on 2 cores).

    python -m benchmarks.backfill [--rows 3000000] [--repeat 7] [--folder .bench]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import polars as pl

from mdstream.contract.clock import WallClock
from mdstream.contract.timeframes import ALL_TIMEFRAMES
from mdstream.inputs.sample import trades_day, write_csv_gz
from mdstream.jobs.backfill import BackfillOptions, run_backfill
from mdstream.sinks.factory import SinkOptions, open_sink


def timed(fn) -> float:
    """Wall seconds of one call of fn()."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    """Generate (or reuse) the input, time floor and backfill alternately, print the medians and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--folder", type=Path, default=Path(".bench"))
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    path = args.folder / f"binance-futures_trades_2024-01-01_BTCUSDT.{args.rows}.csv.gz"
    if not path.exists():
        print(f"generating {args.rows:,} trades -> {path} ...")
        write_csv_gz(trades_day(args.rows), path)

    def floor() -> None:
        pl.read_csv(path)

    def backfill() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            # The sink the CLI's backfill opens (open_sink), so the timing is the command's own.
            sink = open_sink(SinkOptions(duckdb_path=Path(tmp) / "bench.duckdb"), mode="backfill")
            try:
                summary = run_backfill(BackfillOptions(inputs=(path,), timeframes=ALL_TIMEFRAMES), sink, WallClock())
            finally:
                sink.close()
            assert summary.ticks == args.rows, summary.ticks

    floor()  # warm the page cache and Polars' thread pool once
    floors, fulls = [], []
    for _ in range(args.repeat):
        floors.append(timed(floor))
        fulls.append(timed(backfill))
    f, b = statistics.median(floors), statistics.median(fulls)
    print(f"input: {args.rows:,} trades, {path.stat().st_size / 1e6:.1f} MB gzip")
    print(f"(a) polars.read_csv alone     : {f:.3f} s  (median of {args.repeat})")
    print(f"(b) full backfill to DuckDB   : {b:.3f} s  ({args.rows / b / 1e6:.2f} M ticks/s end to end)")
    pairs = sorted(full / flo for flo, full in zip(floors, fulls))
    print(f"ratio (b)/(a)                 : {b / f:.2f}  (target <= 1.5; run by run {pairs[0]:.2f}..{pairs[-1]:.2f})")


if __name__ == "__main__":
    main()
