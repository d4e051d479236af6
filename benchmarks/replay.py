"""Replay at --speed 0 against the backfill of the same file, as whole processes, in the same run.

Generates a trade day (Tardis trades .csv.gz; several sizes), then times, alternately,
  (a) `mdstream backfill --input FILE` into a fresh DuckDB file: the floor here;
  (b) `mdstream stream --source replay --input FILE --speed 0` into another fresh DuckDB file;
checks both wrote the same windows, and prints the medians and the ratio replay / backfill (target <= 2).

    python -m benchmarks.replay [--rows 300000,1000000] [--repeat 3] [--folder .bench]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from mdstream.inputs.sample import trades_day, write_csv_gz

MDSTREAM = str(Path(sys.executable).with_name("mdstream"))


def run(args: list[str]) -> float:
    """Wall seconds of one `mdstream args...` process (it must succeed)."""
    start = time.perf_counter()
    subprocess.run([MDSTREAM, *args], check=True, capture_output=True)
    return time.perf_counter() - start


def windows(db: Path) -> int:
    """Windows with trades the file holds (latest revisions)."""
    with duckdb.connect(str(db), read_only=True) as con:
        return con.sql("SELECT count(*) FROM candles_latest WHERE trades > 0").fetchall()[0][0]


def bench(path: Path, folder: Path, repeat: int) -> tuple[float, float, int, int]:
    """(median backfill s, median replay s, windows of each) over `repeat` alternating runs."""
    back, replay = [], []
    counts = (0, 0)
    for n in range(repeat):
        a, b = folder / f"b{n}.duckdb", folder / f"r{n}.duckdb"
        for db in (a, b):
            db.unlink(missing_ok=True)
        back.append(run(["backfill", "--input", str(path), "--duckdb", str(a), "--quiet"]))
        replay.append(run(["stream", "--source", "replay", "--input", str(path), "--speed", "0", "--quiet",
                           "--duckdb", str(b)]))
        counts = (windows(a), windows(b))
    return statistics.median(back), statistics.median(replay), *counts


def main() -> None:
    """Generate (or reuse) each input size, time both jobs, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="300000,1000000", help="comma-separated trade counts, one day each")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=Path(".bench"))
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    print(f"{'trades':>10} {'backfill s':>11} {'replay s':>9} {'ratio':>6}  windows (backfill / replay)")
    for rows in (int(r) for r in args.rows.split(",")):
        path = args.folder / f"binance-futures_trades_2024-01-01_BTCUSDT.{rows}.csv.gz"
        if not path.exists():
            write_csv_gz(trades_day(rows), path)
        back, replay, nb, nr = bench(path, args.folder, args.repeat)
        print(f"{rows:>10,} {back:>11.2f} {replay:>9.2f} {replay / back:>6.2f}  {nb:,} / {nr:,}")


if __name__ == "__main__":
    main()
