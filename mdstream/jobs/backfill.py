"""`mdstream backfill`: historical days of ticks -> candles + features -> a sink, one atomic day at a time."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import cast

import polars as pl

from ..contract import columns as c
from ..contract.clock import Clock
from ..contract.errors import InputError, Interrupted
from ..contract.schema import QUARANTINE_SCHEMA, TICK_SCHEMA, conform, empty_ticks, newest
from ..contract.timeframes import day_bounds, epoch_us
from ..engine.core import REEMIT, Spec, fold
from ..engine.state import SeriesState, merge, state_from_candles
from ..engine.windows import trade_windows
from ..inputs.instruments import InstrumentBook
from ..inputs.tardis import TickRead
from ..kernel import gaps as gp
from ..kernel.candles import split_series
from ..sinks import base
from .backfill_inputs import Note, Unit, input_units, read_ahead, tardis_units
from .backfill_summary import BackfillSummary, DayResult, interrupted, nothing_written, saw
from .requests import BackfillOptions
from .series import in_range, series_of, split_days
from .signals import NoInterrupts, exit_status

__all__ = ["BackfillOptions", "BackfillSummary", "DayResult", "process_day", "run_backfill"]


Progress = Callable[[str, int, int], None]  # (label, done, total)
Committed = Callable[[DayResult], None]  # told of each day as soon as it is committed


def process_day(
    ticks: pl.DataFrame | list[pl.DataFrame],
    *,
    single_series: bool = False,
    day: date,
    timeframes: Sequence[str],
    now: datetime,
    end: datetime | None,
    complete: bool = True,
    prior: SeriesState | None = None,
    input_end: datetime | None = None,
    instruments: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, SeriesState]:
    """Candles with features of one day's ticks through the engine core, continuing `prior` (the state after
    earlier days); returns (candles in contract columns, new state). `end`: the day's grid ends there (exclusive);
    None: the input ends at `input_end` (default: its last tick), and the windows holding that instant are cut
    short, so feed. `single_series` skips re-checking a frame the caller already split (a list holds frames of
    one series each: several series fold in one pass); `instruments` (INSTRUMENT_SCHEMA) gives each series'
    volume rule. Pure: no I/O, `now` passed in."""
    start, midnight = day_bounds(day)
    if isinstance(ticks, list):
        parts = [part for part in ticks if part.height]
    else:
        parts = [ticks] if single_series and ticks.height else split_series(ticks)
    feed = gp.id_jump_gaps(parts).collect()
    if not complete and parts:
        # A truncated file: whatever followed each series' last tick that day is missing, not quiet.
        cut = pl.DataFrame({
            c.EXCHANGE: [p[c.EXCHANGE][0] for p in parts], c.SYMBOL: [p[c.SYMBOL][0] for p in parts],
            gp.GAP_START: [newest(p.get_column(c.TIMESTAMP)) for p in parts],
            gp.GAP_END: [end or midnight] * len(parts), gp.GAP_REASON: ["input truncated"] * len(parts),
        }, schema=gp.GAP_SCHEMA)
        feed = pl.concat([feed, cut])
    spec = Spec(tuple(timeframes))
    state = prior if prior is not None else SeriesState.empty()
    if feed.height:
        state = state.evolve(gaps=pl.concat([state.gaps, feed]))
    windows = trade_windows(parts, spec.base, instruments=instruments)
    final = None
    if end is None:
        lasts = [t for t in (newest(p.get_column(c.TIMESTAMP)) for p in parts) if t is not None]
        final = input_end or (max(lasts) if lasts else None)
    candles, state = fold(
        state, windows, spec, now=now, start_us=epoch_us(start),
        until_us=epoch_us(end) if end is not None else None, final_us=epoch_us(final) if final is not None else None,
    )
    return candles.drop(REEMIT), state


@dataclass
class _Carry:
    """What one series hands from a day to the next: the engine state after it and the last day written."""

    prior: SeriesState | None
    last_day: date | None = None
    empty: pl.DataFrame | None = None  # a zero-row tick frame of the series, for quiet days
    instruments: pl.DataFrame | None = None  # the series' instrument row (INSTRUMENT_SCHEMA): its volume rule


def run_backfill(opts: BackfillOptions, sink: base.DaySink, clock: Clock, progress: Progress | None = None, *,
                 committed: Committed | None = None, interrupts=None, note: Note | None = None) -> BackfillSummary:
    """Run a backfill, one unit (a series-day file, or a Tardis download) at a time. Steps, in order:
    1. resolve inputs: --input files grouped into series-days by their Tardis names, or each (symbol, day)
       Tardis file downloaded into the cache (the next unit reads on a thread while this one goes through 3-5);
    2. read and validate ticks (bad rows to quarantine, a trade repeated within a day counted once);
    3. per series and UTC day, in time order: candles of every timeframe, continuing the previous day's
       close and feature state so multi-day input is one continuous grid;
    4. features;
    5. sink.write_day: the day's candles (+ ticks, quarantine) replace that day whole or not at all.
    A signal (see signals.Interrupts) stops it between days, never inside a day's write: Interrupted then lists
    the committed days. Nothing to write at all (no trade in the range or of the symbols asked) is an InputError."""
    began = time.perf_counter()
    summary = BackfillSummary()
    carry: dict[tuple[str, str], _Carry] = {}
    book = InstrumentBook(opts.instruments, cache_dir=opts.cache_dir)
    guard = interrupts or NoInterrupts()
    units = input_units(opts.inputs) if opts.inputs else tardis_units(opts)
    try:
        for n, (unit, reads) in enumerate(read_ahead(units, opts, clock, note)):
            _backfill_unit(unit, reads, opts, sink, clock, summary, carry, guard, committed, book)
            if progress:
                progress(unit.label, n + 1, len(units))
        if opts.inputs and opts.from_date and opts.to_date:
            # An explicit range is one continuous grid: quiet days after the last trade run to its end.
            for (exchange, symbol), state in carry.items():
                if state.last_day is None:
                    continue
                days = _days_between(state.last_day + timedelta(days=1), opts.to_date)
                _write_days([_Job(exchange, symbol, days, {}, state, True, True, None, (), 0)], opts, sink, clock,
                            summary, guard, committed)
        with guard.atomic():
            sink.flush()
    except KeyboardInterrupt as stop:
        summary.seconds = time.perf_counter() - began
        raise Interrupted(interrupted(summary, stop), committed=[d.label for d in summary.days],
                          exit_code=exit_status(stop)) from None
    summary.seconds = time.perf_counter() - began
    summary.instruments, summary.warnings = book.resolved, list(book.warnings)
    if not summary.days and units:  # a shard with no task has nothing to do; input without a day is an error
        raise InputError(nothing_written(opts, summary))
    return summary


def _days_between(first: date, end: date) -> list[date]:
    """Days first .. end - 1."""
    return [first + timedelta(days=i) for i in range((end - first).days)]


def _backfill_unit(unit: Unit, reads: list[TickRead], opts: BackfillOptions, sink: base.DaySink, clock: Clock,
                   summary: BackfillSummary, carry: dict[tuple[str, str], _Carry], guard, committed,
                   book: InstrumentBook) -> None:
    """Split one unit's ticks by series and UTC day and write each day (steps 3-5 of run_backfill).
    Each file's quarantine, duplicate count and completeness belong to the series read from it."""
    summary.rows_read += sum(r.rows_read for r in reads)
    summary.rejected += sum(r.quarantine.height for r in reads)
    summary.sources += [r.source for r in reads]
    for r in reads:
        if r.quarantine.height:
            for reason, n in r.quarantine[c.Q_REASON].value_counts().iter_rows():
                summary.reasons[reason] = summary.reasons.get(reason, 0) + n
    claimed: set[int] = set()  # reads whose quarantine rows were written with a series
    jobs: list[_Job] = []
    # Where the unit's input ends, over every file: a series' grid reaches it, and the windows holding it are cut.
    ends = [t for t in (newest(r.ticks.get_column(c.TIMESTAMP)) for r in reads if r.ticks.height) if t is not None]
    input_end = max(ends) if ends else None
    for series, sources, cross_dups in series_of(reads):
        if series.height == 0:
            continue
        exchange, symbol = series[c.EXCHANGE][0], series[c.SYMBOL][0]
        saw(summary, exchange, symbol, series)
        series = in_range(series, opts.from_date, opts.to_date)
        if (opts.symbols and symbol not in opts.symbols) or (opts.exchange and exchange != opts.exchange):
            continue
        if series.height == 0 and unit.day is None:
            continue
        own = [r for r in sources if id(r) not in claimed]
        claimed.update(id(r) for r in own)
        quarantine = pl.concat([r.quarantine for r in own]) if own else pl.DataFrame(schema=QUARANTINE_SCHEMA)
        by_day = dict(split_days(series))
        days = sorted(set(by_day) | ({unit.day} if unit.day else set()))
        state = carry.get((exchange, symbol))
        if state is None:
            state = _Carry(prior=_warm_state(sink, exchange, symbol, days[0], opts.timeframes),
                           instruments=book.frame([(exchange, symbol)]))
        state.empty = series.clear()
        ranged = opts.to_date is not None
        if opts.from_date and opts.to_date and unit.day is None:
            # An explicit range is one continuous grid, quiet days between the files' days included.
            days = _days_between(state.last_day + timedelta(days=1) if state.last_day else days[0], days[-1] + timedelta(days=1))
        carry[(exchange, symbol)] = state
        jobs.append(_Job(exchange, symbol, days, by_day, state, ranged or unit.explicit_end,
                         all(r.complete for r in sources), quarantine, tuple(r.source for r in sources),
                         sum(r.duplicates for r in own) + cross_dups))
    # Series with the same days and rules fold together, in one pass of the engine (as a stream's symbols do)
    together: dict[tuple, list[_Job]] = {}
    for job in jobs:
        together.setdefault((tuple(job.days), job.ranged, job.complete), []).append(job)
    for group in together.values():
        _write_days(group, opts, sink, clock, summary, guard, committed, input_end=input_end)
    # Files that gave no written series (empty, all rejected) still leave their quarantine rows.
    orphans = [r.quarantine for r in reads if id(r) not in claimed and r.quarantine.height]
    if orphans:
        sink.write(base.QUARANTINE, conform(pl.concat(orphans), QUARANTINE_SCHEMA))


@dataclass
class _Job:
    """One series' days of a unit to compute and write, and what rides with them."""

    exchange: str
    symbol: str
    days: list[date]
    by_day: dict[date, pl.DataFrame]
    state: _Carry
    ranged: bool
    complete: bool
    quarantine: pl.DataFrame | None
    sources: tuple[str, ...]
    duplicates: int


def _write_days(jobs: list[_Job], opts: BackfillOptions, sink: base.DaySink, clock: Clock, summary: BackfillSummary,
                guard, committed, *, input_end: datetime | None = None) -> None:
    """Compute and write the days (the same for every job) of one or more series in order, carrying their state
    (several series fold in one pass, then a day of all of them is written, in one commit where the sink can);
    a job's quarantine rides with its first day; only the last day can be cut short by a truncated file. Unless
    `ranged`, the last day ends where the input does (`input_end`: its windows there are cut short, feed), or at
    midnight when the input runs on past it (another series' trades)."""
    first = jobs[0]
    days, ranged, complete = first.days, first.ranged, first.complete
    prior = first.state.prior if len(jobs) == 1 else merge([job.state.prior for job in jobs])
    rules = [job.state.instruments for job in jobs if job.state.instruments is not None]
    instruments = (rules[0] if len(rules) == 1 else pl.concat(rules)) if rules else None
    for i, day in enumerate(days):
        parts = [job.by_day.get(day, job.state.empty if job.state.empty is not None else empty_ticks()) for job in jobs]
        last = i == len(days) - 1
        midnight = day_bounds(day)[1]
        to_midnight = ranged or not last or input_end is None or input_end >= midnight
        candles, prior = process_day(
            parts if len(jobs) > 1 else parts[0], single_series=True, day=day, timeframes=opts.timeframes,
            now=clock.now(), end=midnight if to_midnight else None, complete=complete or not last, prior=prior,
            input_end=input_end, instruments=instruments,
        )
        by_series = candles.partition_by(c.EXCHANGE, c.SYMBOL, as_dict=True) if len(jobs) > 1 else {}
        mine = [by_series.get((job.exchange, job.symbol), candles.clear()) if len(jobs) > 1 else candles
                for job in jobs]
        _write_day(jobs, day, i, parts, mine, opts, sink, summary, guard, committed, complete or not last)
    for job in jobs:
        job.state.prior = prior if len(jobs) == 1 or prior is None else prior.only(job.exchange, job.symbol)


def _write_day(jobs: list[_Job], day: date, i: int, day_ticks: list[pl.DataFrame], candles: list[pl.DataFrame],
               opts: BackfillOptions, sink: base.DaySink, summary: BackfillSummary, guard, committed,
               complete: bool) -> None:
    """Write one day of each job's series, each series-day whole or not at all (in one commit where the sink
    can), its quarantine and duplicates with its first day, and count them."""
    writes: list[base.Day] = []
    results = []
    for job, ticks, mine in zip(jobs, day_ticks, candles):
        q = job.quarantine if (i == 0 and job.quarantine is not None) else pl.DataFrame(schema=QUARANTINE_SCHEMA)
        frames = {base.CANDLES: mine, base.QUARANTINE: conform(q, QUARANTINE_SCHEMA)}
        if opts.store_ticks:
            frames[base.TICKS] = conform(ticks, TICK_SCHEMA)
        writes.append((job.exchange, job.symbol, day.isoformat(), frames))
        results.append(DayResult(job.exchange, job.symbol, day, ticks.height, mine.height, q.height,
                                 job.duplicates if i == 0 else 0, complete, job.sources))
    with guard.atomic():
        base.write_days(sink, writes)
        summary.days.extend(results)
    for job, result in zip(jobs, results):
        job.state.last_day = day
        if committed:
            committed(result)


def _warm_state(sink: base.DaySink, exchange: str, symbol: str, day: date,
                timeframes: Sequence[str]) -> SeriesState | None:
    """The engine state after the days before `day` already in the sink, if the sink can read them back."""
    if not base.can(sink, base.READ_BACK):
        return None
    start, _ = day_bounds(day)
    stored = cast(base.CandleReader, sink).read_candles(exchange=exchange, symbols=[symbol], timeframes=timeframes,
                                                         before=start)
    if stored.height == 0:
        return None
    return state_from_candles(stored, timeframes)
