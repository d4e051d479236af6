"""What a person sees while a backfill runs: a progress bar per day/symbol and a closing summary."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)


@contextmanager
def progress_bar(*, quiet: bool = False) -> Iterator[Callable[[str, int, int], None]]:
    """A transient rich progress bar on standard error; yields advance(label, done, total)."""
    console = Console(stderr=True, quiet=quiet)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True, disable=quiet,
    ) as bar:
        task = bar.add_task("backfill", total=None)

        def advance(label: str, done: int, total: int) -> None:
            """Show `label` and done/total on the bar."""
            bar.update(task, description=label, completed=done, total=max(total, done))

        yield advance


def print_summary(summary, sink, console: Console) -> None:
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
    for instrument in getattr(summary, "instruments", []):
        if instrument.kind != "spot":
            console.print(f"instrument: {instrument.describe()}", markup=False)
    for warning in getattr(summary, "warnings", []):
        console.print(f"warning: {warning}", style="bold yellow", markup=False)


def stdout_console() -> Console:
    """Standard output; 120 columns when it is not a terminal, so logs and pipes are not wrapped at 80."""
    return Console(width=None if sys.stdout.isatty() else 120)
