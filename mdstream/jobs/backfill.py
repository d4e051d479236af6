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
from ..engine.state import SeriesState, state_from_candles
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
    ticks: pl.DataFrame,
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
    short, so feed. `single_series` skips re-checking a frame the caller already split; `instruments`
    (INSTRUMENT_SCHEMA) gives each series' volume rule. Pure: no I/O, `now` passed in."""
    start, midnight = day_bounds(day)
    parts = [ticks] if single_series and ticks.height else split_series(ticks)
    feed = gp.id_jump_gaps(parts).collect()
    if not complete and ticks.height:
        # A truncated file: whatever followed its last tick that day is missing, not quiet.
        cut = ticks.group_by(c.EXCHANGE, c.SYMBOL).agg(pl.col(c.TIMESTAMP).max().alias(gp.GAP_START))
        feed = pl.concat([feed, cut.with_columns(
            pl.lit(end or midnight).cast(gp.GAP_SCHEMA[gp.GAP_END]).alias(gp.GAP_END),
            pl.lit("input truncated").alias(gp.GAP_REASON),
        ).select(list(gp.GAP_SCHEMA))])
    spec = Spec(tuple(timeframes))
    state = prior if prior is not None else SeriesState.empty()
    if feed.height:
        state = state.evolve(gaps=pl.concat([state.gaps, feed]))
    windows = trade_windows(parts, spec.base, instruments=instruments)
    final = None
    if end is None:
        final = input_end or newest(ticks.get_column(c.TIMESTAMP))
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
                _write_days(exchange, symbol, days, {}, state, opts, sink, clock, summary, guard, committed,
                            ranged=True, complete=True, quarantine=None, sources=(), duplicates=0)
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
        _write_days(exchange, symbol, days, by_day, state, opts, sink, clock, summary, guard, committed,
                    ranged=ranged or unit.explicit_end, complete=all(r.complete for r in sources),
                    quarantine=quarantine, sources=tuple(r.source for r in sources),
                    duplicates=sum(r.duplicates for r in own) + cross_dups, input_end=input_end)
        carry[(exchange, symbol)] = state
    # Files that gave no written series (empty, all rejected) still leave their quarantine rows.
    orphans = [r.quarantine for r in reads if id(r) not in claimed and r.quarantine.height]
    if orphans:
        sink.write(base.QUARANTINE, conform(pl.concat(orphans), QUARANTINE_SCHEMA))


def _write_days(exchange: str, symbol: str, days: list[date], by_day: dict[date, pl.DataFrame], state: _Carry,
                opts: BackfillOptions, sink: base.DaySink, clock: Clock, summary: BackfillSummary, guard, committed,
                *, ranged: bool, complete: bool, quarantine: pl.DataFrame | None, sources: tuple[str, ...],
                duplicates: int, input_end: datetime | None = None) -> None:
    """Compute and write `days` of one series in order, carrying `state`; the unit's quarantine rides with its
    first day; only the last day can be cut short by a truncated file. Unless `ranged`, the series' last day
    ends where the input does (`input_end`: its windows there are cut short, feed), or at midnight when the
    input runs on past it (another series' trades)."""
    empty = state.empty if state.empty is not None else empty_ticks()
    for i, day in enumerate(days):
        day_ticks = by_day.get(day, empty)
        last = i == len(days) - 1
        midnight = day_bounds(day)[1]
        to_midnight = ranged or not last or input_end is None or input_end >= midnight
        candles, state.prior = process_day(
            day_ticks, single_series=True, day=day, timeframes=opts.timeframes, now=clock.now(),
            end=midnight if to_midnight else None, complete=complete or not last, prior=state.prior,
            input_end=input_end, instruments=state.instruments,
        )
        q = quarantine if (i == 0 and quarantine is not None) else pl.DataFrame(schema=QUARANTINE_SCHEMA)
        frames = {base.CANDLES: candles, base.QUARANTINE: conform(q, QUARANTINE_SCHEMA)}
        if opts.store_ticks:
            frames[base.TICKS] = conform(day_ticks, TICK_SCHEMA)
        with guard.atomic():
            sink.write_day(exchange, symbol, day.isoformat(), frames)
            result = DayResult(exchange, symbol, day, day_ticks.height, candles.height, q.height,
                               duplicates if i == 0 else 0, complete or not last, sources)
            summary.days.append(result)
        state.last_day = day
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
