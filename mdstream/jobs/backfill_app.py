"""Wiring of the backfill job: open the sink a request asks for, run with a progress bar, print the summary."""

from __future__ import annotations

from ..contract.clock import Clock
from ..observe.backfill_console import print_summary, progress_bar, stdout_console
from ..sinks.factory import SinkOptions, open_sink
from .backfill import BackfillOptions, BackfillSummary, run_backfill


def run_with_progress(opts: BackfillOptions, sink_opts: SinkOptions, clock: Clock, *, quiet: bool = False) -> BackfillSummary:
    """Open the sink, run the backfill with a rich progress bar, close the sink, print the summary."""
    sink = open_sink(sink_opts, mode="backfill")
    try:
        with progress_bar(quiet=quiet) as advance:
            summary = run_backfill(opts, sink, clock, progress=advance)
    finally:
        sink.close()
    print_summary(summary, sink, stdout_console())
    return summary
