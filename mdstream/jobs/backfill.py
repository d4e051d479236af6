"""`mdstream backfill`: historical days of ticks -> candles + features -> a sink, one atomic day at a time."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Callable, Sequence

import polars as pl

from ..contract import columns as c
from ..contract.clock import Clock
from ..contract.errors import ConfigError
from ..contract.instruments import Instrument
from ..contract.schema import CANDLE_SCHEMA, QUARANTINE_SCHEMA, TICK_SCHEMA, conform
from ..contract.timeframes import ALL_TIMEFRAMES, day_bounds
from ..inputs.instruments import InstrumentBook
from ..inputs.tardis import TickRead, read_trades
from ..kernel import gaps as gp
from ..kernel.candles import candles_from_ticks, split_series
from ..kernel.features import add_features, tail_state
from ..sinks import base
from .series import in_range, series_of, split_days


@dataclass(frozen=True)
class BackfillOptions:
    """What to backfill: Tardis days (exchange, symbols, [from, to)) or explicit input files."""

    exchange: str | None = None
    symbols: tuple[str, ...] = ()
    from_date: date | None = None
    to_date: date | None = None  # exclusive, as in tardis-dev
    inputs: tuple[Path, ...] = ()
    timeframes: tuple[str, ...] = ()
    store_ticks: bool = False
    cache_dir: Path = Path("./datasets")
    tardis_endpoint: str | None = None
    shard: tuple[int, int] | None = None
    instruments: tuple[Instrument, ...] = ()  # --instrument overrides of the instrument metadata


@dataclass
class DayResult:
    """What one (exchange, symbol, day) produced."""

    exchange: str
    symbol: str
    day: date
    ticks: int
    candles: int
    quarantined: int
    duplicates: int
    complete: bool


@dataclass
class BackfillSummary:
    """Totals of a backfill run; seconds is wall time of the whole run."""

    days: list[DayResult] = field(default_factory=list)
    seconds: float = 0.0
    instruments: list[Instrument] = field(default_factory=list)  # what each series' volumes were computed with
    warnings: list[str] = field(default_factory=list)  # unknown instruments, unreachable instrument lists

    @property
    def ticks(self) -> int:
        """Ticks turned into candles."""
        return sum(d.ticks for d in self.days)

    @property
    def candles(self) -> int:
        """Candle rows written."""
        return sum(d.candles for d in self.days)

    @property
    def quarantined(self) -> int:
        """Rows rejected and kept in the quarantine table."""
        return sum(d.quarantined for d in self.days)

    @property
    def ticks_per_second(self) -> float:
        """ticks / seconds."""
        return self.ticks / self.seconds if self.seconds > 0 else 0.0


Progress = Callable[[str, int, int], None]  # (label, done, total)


def process_day(
    ticks: pl.DataFrame,
    *,
    single_series: bool = False,
    day: date,
    timeframes: Sequence[str],
    now: datetime,
    end: datetime | None,
    complete: bool = True,
    prior: pl.DataFrame | None = None,
    instruments: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Candles with features of one day's ticks, continuing `prior` (feature tail of earlier days);
    returns (candles in contract columns, new tail state); `single_series` skips re-checking a frame the
    caller already split; `instruments` (INSTRUMENT_SCHEMA) gives each series' volume rule. Pure: no I/O,
    `now` passed in."""
    start, midnight = day_bounds(day)
    parts = [ticks] if single_series and ticks.height else split_series(ticks)
    feed = gp.id_jump_gaps(parts)
    if not complete and ticks.height:
        # A truncated file: whatever followed its last tick that day is missing, not quiet.
        cut = ticks.group_by(c.EXCHANGE, c.SYMBOL).agg(pl.col(c.TIMESTAMP).max().alias(gp.GAP_START))
        feed = pl.concat([feed, cut.lazy().with_columns(
            pl.lit(end or midnight).cast(gp.GAP_SCHEMA[gp.GAP_END]).alias(gp.GAP_END),
            pl.lit("input truncated").alias(gp.GAP_REASON),
        ).select(list(gp.GAP_SCHEMA))])
    prior = prior if prior is not None and prior.height else None
    prior_close = None
    if prior is not None:
        # The tail comes sorted by series and time (tail_state): its last close per series carries on.
        prior_close = prior.group_by(list(c.SERIES_KEY)).agg(pl.col(c.CLOSE).last())
    candles = candles_from_ticks(
        parts, timeframes, now=now, start=start, end=end, feed_gaps=feed, prior_close=prior_close,
        instruments=instruments,
    )
    featured = add_features(candles, prior=prior).collect(engine="in-memory")
    return conform(featured, CANDLE_SCHEMA), tail_state(featured)


def _input_reads(opts: BackfillOptions, now: datetime) -> list[TickRead]:
    """Read every explicit --input file, two at a time: while one is still inflating (gzip is one core) the
    other is parsed."""
    def read(path: Path) -> TickRead:
        """One file, ids as numbers unless ticks are stored."""
        return read_trades(path, now=now, numeric_ids=not opts.store_ticks)

    if len(opts.inputs) < 2:
        return [read(path) for path in opts.inputs]
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="backfill-read") as pool:
        return list(pool.map(read, opts.inputs))


def plan_days(opts: BackfillOptions) -> list[tuple[str, date]]:
    """(symbol, day) tasks of a Tardis backfill, in order, after sharding."""
    if not (opts.exchange and opts.symbols and opts.from_date and opts.to_date):
        raise ConfigError("a Tardis backfill needs --exchange, --symbols, --from and --to (or give --input files)")
    if opts.to_date <= opts.from_date:
        raise ConfigError(f"--to {opts.to_date} must be after --from {opts.from_date} (--to is exclusive)")
    days = [opts.from_date + timedelta(days=i) for i in range((opts.to_date - opts.from_date).days)]
    tasks = [(symbol, day) for symbol in opts.symbols for day in days]
    if opts.shard:
        from .shard import select_tasks

        tasks = [(symbol, day) for day, symbol in select_tasks([(day, symbol) for symbol, day in tasks], *opts.shard)]
    return tasks


def run_backfill(opts: BackfillOptions, sink: base.DaySink, clock: Clock, progress: Progress | None = None) -> BackfillSummary:
    """Run a backfill. Steps, in order:
    1. resolve inputs: the --input files, or each (symbol, day) Tardis file downloaded into the cache (the
       next day's download and read run ahead on a thread while the current day goes through 3-5);
    2. read and validate ticks (bad rows to quarantine, duplicate trade ids counted once);
    3. per series and UTC day, in time order: candles of every timeframe, continuing the previous day's
       close and feature state so multi-day input is one continuous grid;
    4. features;
    5. sink.write_day: the day's candles (+ ticks, quarantine) replace that day whole or not at all.
    """
    began = time.perf_counter()
    summary = BackfillSummary()
    carry: dict[tuple[str, str], pl.DataFrame | None] = {}
    book = InstrumentBook(opts.instruments, cache_dir=opts.cache_dir)
    if opts.inputs:
        reads = _input_reads(opts, clock.now())
        _backfill_frames(reads, opts, sink, clock, summary, carry, progress, book=book)
    else:
        tasks = plan_days(opts)
        # Read-ahead: the next day downloads and reads on a thread while this one is computed and written
        # (download and gzip are I/O and one core; candles, features and the sink mostly another).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="backfill-read") as pool:
            ahead = pool.submit(_fetch_day, opts, clock, *tasks[0]) if tasks else None
            for n, (symbol, day) in enumerate(tasks):
                reads = ahead.result()
                ahead = pool.submit(_fetch_day, opts, clock, *tasks[n + 1]) if n + 1 < len(tasks) else None
                _backfill_frames(reads, opts, sink, clock, summary, carry, None, explicit_end=True, only_day=day,
                                 book=book)
                if progress:
                    progress(f"{opts.exchange} {symbol} {day}", n + 1, len(tasks))
    sink.flush()
    summary.seconds = time.perf_counter() - began
    summary.instruments, summary.warnings = book.resolved, list(book.warnings)
    return summary


def _fetch_day(opts: BackfillOptions, clock: Clock, symbol: str, day: date) -> list[TickRead]:
    """Download (or find in the cache) and read the Tardis trades file of one symbol and day."""
    from ..inputs.tardis import download_trades

    paths = download_trades(
        opts.exchange, [symbol], day.isoformat(), (day + timedelta(days=1)).isoformat(),
        cache_dir=opts.cache_dir, endpoint=opts.tardis_endpoint,
    )
    return [read_trades(p, now=clock.now(), numeric_ids=not opts.store_ticks) for p in paths]


def _backfill_frames(
    reads: list[TickRead],
    opts: BackfillOptions,
    sink: base.DaySink,
    clock: Clock,
    summary: BackfillSummary,
    carry: dict[tuple[str, str], pl.DataFrame | None],
    progress: Progress | None,
    *,
    explicit_end: bool = False,
    only_day: date | None = None,
    book: InstrumentBook | None = None,
) -> None:
    """Split the reads' ticks by series and UTC day and write each day (steps 3-5 of run_backfill).
    Each file's quarantine, duplicate count and completeness belong to the series read from it."""
    timeframes = opts.timeframes or ALL_TIMEFRAMES
    claimed: set[int] = set()  # reads whose quarantine rows were written with a series
    for series, sources, cross_dups in series_of(reads):
        series = in_range(series, opts.from_date, opts.to_date)
        exchange, symbol = series[c.EXCHANGE][0] if series.height else None, series[c.SYMBOL][0] if series.height else None
        if series.height == 0 or (opts.symbols and symbol not in opts.symbols) or (opts.exchange and exchange != opts.exchange):
            continue
        own = [r for r in sources if id(r) not in claimed]
        claimed.update(id(r) for r in own)
        quarantine = pl.concat([r.quarantine for r in own]) if own else pl.DataFrame(schema=QUARANTINE_SCHEMA)
        complete = all(r.complete for r in sources)
        by_day = dict(split_days(series))
        days = sorted(set(by_day) | ({only_day} if only_day else set()))
        if opts.from_date and opts.to_date and not only_day:
            # An explicit range is one continuous grid, quiet days included.
            days = [days[0] + timedelta(days=i) for i in range((opts.to_date - days[0]).days)]
        key = (exchange, symbol)
        instruments = (book or InstrumentBook()).frame([key])
        prior = carry[key] if key in carry else _warm_tail(sink, exchange, symbol, days[0])
        for i, day in enumerate(days):
            day_ticks = by_day.get(day, series.clear())
            last = i == len(days) - 1
            ranged = explicit_end or (opts.to_date is not None) or not last
            candles, prior = process_day(
                day_ticks, single_series=True, day=day, timeframes=timeframes, now=clock.now(),
                end=day_bounds(day)[1] if ranged else None, complete=complete or not last, prior=prior,
                instruments=instruments,
            )
            q = quarantine if i == 0 else quarantine.clear()
            frames = {base.CANDLES: candles, base.QUARANTINE: conform(q, QUARANTINE_SCHEMA)}
            if opts.store_ticks:
                frames[base.TICKS] = conform(day_ticks, TICK_SCHEMA)
            sink.write_day(exchange, symbol, day.isoformat(), frames)
            dups = sum(r.duplicates for r in own) + cross_dups if i == 0 else 0
            summary.days.append(DayResult(exchange, symbol, day, day_ticks.height, candles.height, q.height, dups,
                                          complete or not last))
            if progress:
                progress(f"{exchange} {symbol} {day}", len(summary.days), len(summary.days))
        carry[key] = prior
    # Files that gave no written series (empty, all rejected) still leave their quarantine rows.
    orphans = [r.quarantine for r in reads if id(r) not in claimed and r.quarantine.height]
    if orphans:
        sink.write(base.QUARANTINE, conform(pl.concat(orphans), QUARANTINE_SCHEMA))


def _warm_tail(sink: base.DaySink, exchange: str, symbol: str, day: date) -> pl.DataFrame | None:
    """Feature tail of the days before `day` already in the sink, if the sink can read them back."""
    reader = getattr(sink, "read_tail", None)
    if reader is None:
        return None
    start, _ = day_bounds(day)
    tail = reader(exchange, symbol, before=start)
    if tail is None or tail.height == 0:
        return None
    # add_features recomputes the stored feature columns itself, from this tail onwards.
    return tail_state(add_features(tail.lazy()).collect(engine="in-memory"))
