"""Wiring of the backfill job: open the sink a request asks for, run with progress and interrupts handled,
print each day as it is committed and the totals; a truncated input ends as DataGaps (exit status 3)."""

from __future__ import annotations

from ..contract.clock import Clock, WallClock
from ..contract.errors import DataGaps
from ..observe.backfill_console import print_day, print_totals, progress_bar, stdout_console
from ..sinks.factory import SinkOptions, open_sink
from .backfill import BackfillOptions, BackfillSummary, run_backfill
from .signals import Interrupts


def run_with_progress(opts: BackfillOptions, sink_opts: SinkOptions, clock: Clock | None = None, *,
                      quiet: bool = False) -> BackfillSummary:
    """Open the sink, run the backfill (SIGINT/SIGTERM stop it between days), close the sink, print the totals."""
    console = stdout_console()
    interrupts = Interrupts()
    with interrupts.installed():
        sink = open_sink(sink_opts, mode="backfill")
        try:
            with progress_bar(quiet=quiet) as bar:
                summary = run_backfill(opts, sink, clock or WallClock(), progress=bar.advance,
                                       committed=lambda day: print_day(day, console), interrupts=interrupts,
                                       note=bar.note)
        except BaseException:
            with interrupts.atomic():
                try:
                    sink.close()
                except Exception:  # noqa: BLE001 - the run's own error is the one to report
                    pass
            raise
        with interrupts.atomic():
            sink.close()
    print_totals(summary, sink, console)
    if summary.truncated:
        files = ", ".join(summary.truncated)
        raise DataGaps(f"finished with data gaps: truncated input {files}; the valid part was written and the rest "
                       f"of its day is marked gap=feed")
    return summary
