"""Where a backfill's ticks come from, one unit at a time: explicit files grouped into series-days by their
Tardis names, or Tardis days downloaded into the cache. The next unit is read on a thread while the current
one is computed and written, so an interrupt keeps every day already written and a long input never sits
whole in memory."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from ..contract.clock import Clock
from ..contract.dates import parse_day
from ..contract.errors import ConfigError
from ..inputs.tardis import TickRead, read_trades
from .input_footprint import footprint, groups
from .requests import BackfillOptions

# How Tardis names a day file: <exchange>_trades_<YYYY-MM-DD>_<SYMBOL>.csv[.gz].
TARDIS_NAME = re.compile(r"(?P<exchange>[a-z0-9_-]+)_trades_(?P<day>\d{4}-\d{2}-\d{2})_(?P<symbol>[^/]+?)\.csv(?:\.gz)?")


@dataclass(frozen=True)
class Unit:
    """What is read and written together: explicit files, or the Tardis file of one (symbol, day)."""

    label: str
    paths: tuple[Path, ...] = ()
    symbol: str | None = None  # a Tardis download: this symbol ...
    day: date | None = None  # ... on this day (also written when it holds no trade)
    explicit_end: bool = False  # every day of the unit runs to midnight (a day file, a Tardis download)


def input_units(paths: tuple[Path, ...]) -> list[Unit]:
    """Explicit files as units. Files named as Tardis names them are grouped by (exchange, symbol, day) and
    ordered by series then day, one unit per day; files named otherwise are grouped by the days their trades
    cover (see input_footprint), or read as one unit when they cannot be taken apart."""
    named: dict[tuple[str, str], dict[date, list[Path]]] = {}
    for path in paths:
        found = TARDIS_NAME.fullmatch(path.name)
        try:
            day = parse_day(found["day"], path.name) if found else None
        except ConfigError:
            day = None  # named like a day file but no real day: read as a plain file
        if found is None or day is None:
            return _footprint_units(paths)
        named.setdefault((found["exchange"], found["symbol"].upper()), {}).setdefault(day, []).append(path)
    # A day file covers its whole day: its grid runs to midnight (a truncated one marks the rest gap=feed), so
    # the next day, backfilled now or by tomorrow's run, continues it without a hole.
    return [Unit(label=f"{exchange} {symbol} {day}", paths=tuple(days[day]), explicit_end=True)
            for (exchange, symbol), days in sorted(named.items()) for day in sorted(days)]


def _footprint_units(paths: tuple[Path, ...]) -> list[Unit]:
    """Files named any way as units: groups of files sharing no series-day, in time order (one unit when the
    files cannot be taken apart, or there is only one)."""
    whole = [Unit(label=", ".join(p.name for p in paths), paths=tuple(paths))]
    if len(paths) < 2:
        return whole
    prints = [footprint(path) for path in paths]
    if any(fp is None for fp in prints):
        return whole
    order = groups([fp for fp in prints if fp is not None])
    if order is None or len(order) == 1:
        return whole
    return [Unit(label=", ".join(paths[i].name for i in files), paths=tuple(paths[i] for i in files),
                 explicit_end=continues) for files, continues in order]


def tardis_units(opts: BackfillOptions) -> list[Unit]:
    """(symbol, day) downloads of a Tardis backfill, series by series in day order, after sharding."""
    if not (opts.exchange and opts.symbols and opts.from_date and opts.to_date):
        raise ConfigError("a Tardis backfill needs --exchange, --symbols, --from and --to (or give --input files)")
    if opts.to_date <= opts.from_date:
        raise ConfigError(f"--to {opts.to_date} must be after --from {opts.from_date} (--to is exclusive)")
    days = [opts.from_date + timedelta(days=i) for i in range((opts.to_date - opts.from_date).days)]
    tasks = [(symbol, day) for symbol in opts.symbols for day in days]
    if opts.shard:
        from .shard import select_tasks

        tasks = [(symbol, day) for day, symbol in select_tasks([(day, symbol) for symbol, day in tasks], *opts.shard)]
    return [Unit(label=f"{opts.exchange} {symbol} {day}", symbol=symbol, day=day, explicit_end=True)
            for symbol, day in tasks]


Note = Callable[[str], None]


def read_unit(unit: Unit, opts: BackfillOptions, now: datetime, note: Note | None = None,
              cancel: threading.Event | None = None) -> list[TickRead]:
    """The reads of one unit (ids as numbers unless ticks are stored; a file of several series split by series);
    a Tardis day is downloaded first, and a cached file found truncated is removed and downloaded again."""
    numeric = not opts.store_ticks
    if unit.symbol is None:
        if len(unit.paths) < 2:
            return [read_trades(path, now=now, numeric_ids=numeric, split=True) for path in unit.paths]
        # Two at a time: while one file is still inflating (gzip is one core) the other is parsed.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="backfill-file") as pool:
            return list(pool.map(lambda path: read_trades(path, now=now, numeric_ids=numeric, split=True), unit.paths))
    from ..inputs.tardis_download import cache_path, download_trades

    assert unit.day is not None and opts.exchange is not None, "a download unit names its day (tardis_units)"
    day = datetime(unit.day.year, unit.day.month, unit.day.day)
    cached = cache_path(opts.cache_dir, opts.exchange, unit.symbol, day).exists()
    for attempt in range(2):
        paths = download_trades(
            opts.exchange, [unit.symbol], unit.day.isoformat(), (unit.day + timedelta(days=1)).isoformat(),
            cache_dir=opts.cache_dir, endpoint=opts.tardis_endpoint, timeout_s=opts.download_timeout,
            progress=(lambda text: note(f"{unit.label}: {text}")) if note else None, cancel=cancel,
        )
        reads = [read_trades(p, now=now, numeric_ids=numeric, split=True) for p in paths]
        if attempt or not cached or all(r.complete for r in reads):
            return reads
        # A cut-short file in the cache (a copy or disk that failed): fetch it again once.
        if note:
            note(f"{unit.label}: cached file truncated, downloading it again")
        for path in paths:
            path.unlink(missing_ok=True)
    return reads


def read_ahead(units: list[Unit], opts: BackfillOptions, clock: Clock,
               note: Note | None = None) -> Iterator[tuple[Unit, list[TickRead]]]:
    """(unit, reads) in order; the next unit is read on a thread while the caller works on this one. On exit
    (also by an interrupt) a download under way is cancelled and nothing waits for it."""
    cancel = threading.Event()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="backfill-read")

    def submit(unit: Unit) -> Future:
        """Start reading `unit` on the thread."""
        return pool.submit(read_unit, unit, opts, clock.now(), note, cancel)

    try:
        ahead = submit(units[0]) if units else None
        for n, unit in enumerate(units):
            assert ahead is not None  # submitted for every unit before its turn
            reads = ahead.result()
            ahead = submit(units[n + 1]) if n + 1 < len(units) else None
            yield unit, reads
    finally:
        cancel.set()
        pool.shutdown(wait=False, cancel_futures=True)
