"""What a person sees while a backfill runs: a progress bar (or plain lines when standard error is not a
terminal), one line per day as soon as it is committed, and the closing totals. Rich is imported only when a
terminal shows them: a backfill in a pipe, a log or a sharded job prints plain lines without its ~65 ms import."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress

NOTE_EVERY_S = 5.0  # plain-line notes (download progress) at most this often, retries always


class PlainConsole:
    """The part of rich's Console the backfill uses, writing plain lines to a stream that is not a terminal."""

    is_terminal = False

    def __init__(self, stream: TextIO, *, quiet: bool = False):
        self.stream, self.quiet = stream, quiet

    def print(self, text: str, **_style: Any) -> None:
        """Write `text` and a newline (styles are for terminals)."""
        if not self.quiet:
            print(text, file=self.stream, flush=True)


def _console(stream: TextIO, *, quiet: bool = False) -> Any:
    """A rich Console on `stream` when it is a terminal, else a PlainConsole."""
    if not stream.isatty():
        return PlainConsole(stream, quiet=quiet)
    from rich.console import Console

    return Console(file=stream, quiet=quiet)


class BackfillProgress:
    """advance(label, done, total) moves the bar; note(text) shows what is happening meanwhile (downloads)."""

    def __init__(self, bar: Progress | None, console: Any):
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
    console = _console(sys.stderr, quiet=quiet)
    if quiet or not console.is_terminal:
        yield BackfillProgress(None, console)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    ) as bar:
        yield BackfillProgress(bar, console)


def print_day(d, console: Any) -> None:
    """One line for a day just committed."""
    flag = "" if d.complete else "  (input truncated: rest of day marked gap=feed)"
    console.print(
        f"{d.exchange} {d.symbol} {d.day}: {d.ticks:,} ticks -> {d.candles:,} candles, "
        f"{d.quarantined:,} quarantined, {d.duplicates:,} duplicate ids{flag}",
        markup=False, highlight=False,
    )


def print_totals(summary, sink, console: Any) -> None:
    """The totals and throughput, then the sink's own line."""
    console.print(
        f"{summary.ticks:,} ticks read, {summary.candles:,} candles written, {summary.quarantined:,} ticks "
        f"quarantined in {summary.seconds:.2f}s ({summary.ticks_per_second:,.0f} ticks/s)",
        style="bold", markup=False, highlight=False,
    )
    describe = getattr(sink, "summary", None)
    if describe:
        console.print(describe(), markup=False, highlight=False)
    for instrument in getattr(summary, "instruments", []):
        if instrument.kind != "spot":
            console.print(f"instrument: {instrument.describe()}", markup=False)
    for warning in getattr(summary, "warnings", []):
        console.print(f"warning: {warning}", style="bold yellow", markup=False)


def stdout_console() -> Any:
    """Standard output: rich on a terminal, plain unwrapped lines in logs and pipes."""
    return _console(sys.stdout)
