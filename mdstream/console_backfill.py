"""What a person sees while a backfill runs: a progress bar per day/symbol and a closing summary."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .backfill import BackfillOptions, BackfillSummary, run_backfill
from .clock import Clock
from .sinks.factory import SinkOptions, open_sink


def run_with_progress(opts: BackfillOptions, sink_opts: SinkOptions, clock: Clock, *, quiet: bool = False) -> BackfillSummary:
    """Open the sink, run the backfill with a rich progress bar, close the sink, print the summary."""
    console = Console(stderr=True, quiet=quiet)
    sink = open_sink(sink_opts, mode="backfill")
    try:
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, transient=True, disable=quiet,
        ) as bar:
            task = bar.add_task("backfill", total=None)

            def advance(label: str, done: int, total: int) -> None:
                bar.update(task, description=label, completed=done, total=max(total, done))

            summary = run_backfill(opts, sink, clock, progress=advance)
    finally:
        sink.close()
    print_summary(summary, sink, _stdout())
    return summary


def print_summary(summary: BackfillSummary, sink, console: Console) -> None:
    """One line per day written, then the totals and throughput."""
    for d in summary.days:
        flag = "" if d.complete else "  (input truncated: rest of day marked gap=feed)"
        console.print(
            f"{d.exchange} {d.symbol} {d.day}: {d.ticks:,} ticks -> {d.candles:,} candles, "
            f"{d.quarantined:,} quarantined, {d.duplicates:,} duplicate ids{flag}"
        )
    console.print(
        f"[bold]{summary.ticks:,} ticks read, {summary.candles:,} candles written, {summary.quarantined:,} ticks "
        f"quarantined in {summary.seconds:.2f}s ({summary.ticks_per_second:,.0f} ticks/s)[/bold]"
    )
    describe = getattr(sink, "summary", None)
    if describe:
        console.print(describe())


def _stdout() -> Console:
    """Standard output; 120 columns when it is not a terminal, so logs and pipes are not wrapped at 80."""
    return Console(width=None if sys.stdout.isatty() else 120)


def show_latest(db: Path, console: Console | None = None) -> None:
    """Print the newest 1m candles of every symbol from the DuckDB file."""
    from .query import run_query, to_table

    df = run_query(
        db,
        "SELECT symbol, strftime(timestamp_in AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M') AS minute_utc, open, high, low, "
        "close, round(volume, 3) AS volume, trades, round(rsi_5, 1) AS rsi_5, round(vwap_day, 2) AS vwap_day "
        "FROM candles_latest WHERE timeframe = '1m' "
        "QUALIFY row_number() OVER (PARTITION BY symbol ORDER BY timestamp_in DESC) <= 3 ORDER BY symbol, timestamp_in",
    )
    (console or _stdout()).print(to_table(df, title=f"Latest 1m candles in {db}"))
