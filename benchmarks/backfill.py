"""Backfill throughput on several realistic input shapes, against floors measured in the same run.

For each shape (benchmarks/shapes.py: ms ties, µs times, jittered receive times, bursts, several symbols in one
file, out-of-order exchange times) a Tardis trades .csv.gz is generated once, then timed alternately:
  in-process    (a) polars.read_csv of the file            vs (b) run_backfill to DuckDB (target b/a <= 1.3)
  whole-process (c) a python that imports polars and reads vs (d) `mdstream backfill` to DuckDB (target d/c <= 1.5)
Medians are printed with the ratio; the machine may be shared, so compare ratios, not absolute seconds.

    python -m benchmarks.backfill [--rows 3000000] [--repeat 5] [--shapes jitter,bursts] [--mode both] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from mdstream.contract.clock import WallClock
from mdstream.contract.timeframes import ALL_TIMEFRAMES
from mdstream.inputs.sample import write_csv_gz
from mdstream.jobs.backfill import BackfillOptions, run_backfill
from mdstream.sinks.factory import SinkOptions, open_sink

from .shapes import SHAPES

IN_TARGET, WHOLE_TARGET = 1.3, 1.5
QUICK_ROWS = 20_000


@dataclass(frozen=True)
class Figure:
    """Median seconds of a floor and of the backfill for one shape and mode, and their ratio."""

    shape: str
    mode: str
    floor_s: float
    backfill_s: float
    target: float

    @property
    def ratio(self) -> float:
        """backfill / floor."""
        return self.backfill_s / self.floor_s


def timed(fn: Callable[[], object]) -> float:
    """Wall seconds of one call of fn()."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def input_file(folder: Path, shape: str, rows: int) -> Path:
    """The shape's generated day as a Tardis .csv.gz under `folder` (reused when present)."""
    path = folder / f"binance-futures_trades_2024-01-01_{shape}.{rows}.csv.gz"
    if not path.exists():
        write_csv_gz(SHAPES[shape](rows), path)
    return path


def in_process(path: Path, rows: int) -> tuple[Callable[[], object], Callable[[], object]]:
    """(floor, backfill) callables: read_csv alone; the CLI's own run_backfill into the sink it opens."""

    def floor() -> object:
        return pl.read_csv(path)

    def backfill() -> object:
        with tempfile.TemporaryDirectory() as tmp:
            sink = open_sink(SinkOptions(duckdb_path=Path(tmp) / "bench.duckdb"), mode="backfill")
            try:
                summary = run_backfill(BackfillOptions(inputs=(path,), timeframes=ALL_TIMEFRAMES), sink, WallClock())
            finally:
                sink.close()
        assert summary.ticks == rows, summary.ticks
        return summary

    return floor, backfill


def whole_process(path: Path) -> tuple[Callable[[], object], Callable[[], object]]:
    """(floor, backfill) callables: a python that imports polars and reads the file; `mdstream backfill`."""
    read = f"import polars as pl; pl.read_csv({str(path)!r})"

    def floor() -> object:
        return subprocess.run([sys.executable, "-c", read], check=True)

    def backfill() -> object:
        with tempfile.TemporaryDirectory() as tmp:
            cli = [sys.executable, "-m", "mdstream", "backfill", "--input", str(path), "--quiet",
                   "--duckdb", str(Path(tmp) / "bench.duckdb")]
            return subprocess.run(cli, check=True, stdout=subprocess.DEVNULL)

    return floor, backfill


def measure(shape: str, mode: str, pair: tuple[Callable[[], object], Callable[[], object]], repeat: int) -> Figure:
    """Alternate floor and backfill `repeat` times after one warm-up of each; medians."""
    floor, backfill = pair
    floor()
    backfill()
    floors, fulls = [], []
    for _ in range(repeat):
        floors.append(timed(floor))
        fulls.append(timed(backfill))
    target = IN_TARGET if mode == "in-process" else WHOLE_TARGET
    return Figure(shape, mode, statistics.median(floors), statistics.median(fulls), target)


def run(shapes: list[str], rows: int, repeat: int, modes: list[str], folder: Path) -> list[Figure]:
    """Every (shape, mode) figure, printed as it is measured."""
    folder.mkdir(parents=True, exist_ok=True)
    figures = []
    print(f"{'shape':<14}{'mode':<15}{'floor s':>9}{'backfill s':>12}{'ratio':>8}  target")
    for shape in shapes:
        path = input_file(folder, shape, rows)
        for mode in modes:
            pair = in_process(path, rows) if mode == "in-process" else whole_process(path)
            fig = measure(shape, mode, pair, repeat)
            flag = "ok" if fig.ratio <= fig.target else "MISSED"
            print(f"{shape:<14}{mode:<15}{fig.floor_s:>9.3f}{fig.backfill_s:>12.3f}{fig.ratio:>8.2f}  "
                  f"<= {fig.target} {flag}", flush=True)
            figures.append(fig)
    return figures


def main(argv: list[str] | None = None) -> list[Figure]:
    """Parse arguments, generate (or reuse) each shape's file, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=3_000_000, help="trades per generated day")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--shapes", default=",".join(SHAPES), help=f"comma-separated, of {', '.join(SHAPES)}")
    parser.add_argument("--mode", choices=("in-process", "whole-process", "both"), default="both")
    parser.add_argument("--folder", type=Path, default=Path(".bench"))
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} trades, one repeat (smoke test)")
    args = parser.parse_args(argv)
    rows, repeat = (QUICK_ROWS, 1) if args.quick else (args.rows, args.repeat)
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown:
        parser.error(f"unknown shape(s) {', '.join(unknown)}; known: {', '.join(SHAPES)}")
    modes = ["in-process", "whole-process"] if args.mode == "both" else [args.mode]
    print(f"{rows:,} trades per shape, median of {repeat}; shared machine: compare ratios, not seconds")
    return run(shapes, rows, repeat, modes, args.folder)


if __name__ == "__main__":
    main()
