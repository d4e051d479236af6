"""What a person sees while a backfill runs: a progress bar (or plain lines when standard error is not a
terminal), one line per day as soon as it is committed, and the closing totals."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

NOTE_EVERY_S = 5.0  # plain-line notes (download progress) at most this often, retries always


class BackfillProgress:
    """advance(label, done, total) moves the bar; note(text) shows what is happening meanwhile (downloads)."""

    def __init__(self, bar: Progress | None, console: Console):
        self.bar, self.console = bar, console
        self.task = bar.add_task("backfill", total=None) if bar is not None else None
        self._noted = 0.0

    def advance(self, label: str, done: int, total: int) -> None:
        """Show `label` and done/total on the bar."""
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, description=label, completed=done, total=max(total, done))

    def note(self, text: str) -> None:
        """Show `text` as the bar's description, or (no terminal) as a line, throttled except for retries."""
        if self.console.quiet:
            return
        if self.bar is not None and self.task is not None and self.console.is_terminal:
            self.bar.update(self.task, description=text)
            return
        now = time.monotonic()
        if "retry" in text or now - self._noted >= NOTE_EVERY_S:
            self._noted = now
            self.console.print(text, markup=False, highlight=False)


@contextmanager
def progress_bar(*, quiet: bool = False) -> Iterator[BackfillProgress]:
    """A transient rich progress bar on standard error; yields a BackfillProgress."""
    console = Console(stderr=True, quiet=quiet)
    if quiet or not console.is_terminal:
        yield BackfillProgress(None, console)
        return
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    ) as bar:
        yield BackfillProgress(bar, console)


def print_day(d, console: Console) -> None:
    """One line for a day just committed."""
    flag = "" if d.complete else "  (input truncated: rest of day marked gap=feed)"
    console.print(
        f"{d.exchange} {d.symbol} {d.day}: {d.ticks:,} ticks -> {d.candles:,} candles, "
        f"{d.quarantined:,} quarantined, {d.duplicates:,} duplicate ids{flag}",
        markup=False, highlight=False,
    )


def print_totals(summary, sink, console: Console) -> None:
    """The totals and throughput, then the sink's own line."""
    console.print(
        f"[bold]{summary.ticks:,} ticks read, {summary.candles:,} candles written, {summary.quarantined:,} ticks "
        f"quarantined in {summary.seconds:.2f}s ({summary.ticks_per_second:,.0f} ticks/s)[/bold]"
    )
    describe = getattr(sink, "summary", None)
    if describe:
        console.print(describe(), markup=False, highlight=False)
    for instrument in getattr(summary, "instruments", []):
        if instrument.kind != "spot":
            console.print(f"instrument: {instrument.describe()}", markup=False)
    for warning in getattr(summary, "warnings", []):
        console.print(f"warning: {warning}", style="bold yellow", markup=False)


def stdout_console() -> Console:
    """Standard output; 120 columns when it is not a terminal, so logs and pipes are not wrapped at 80."""
    return Console(width=None if sys.stdout.isatty() else 120)
