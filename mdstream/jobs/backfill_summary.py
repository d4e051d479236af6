"""What a backfill did, day by day, and the one-line accounts of a run that wrote nothing or was interrupted."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import polars as pl

from ..contract import columns as c
from .requests import BackfillOptions


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
    sources: tuple[str, ...] = ()  # the files the day was read from

    @property
    def label(self) -> str:
        """'exchange symbol day'."""
        return f"{self.exchange} {self.symbol} {self.day}"


@dataclass
class BackfillSummary:
    """Totals of a backfill run; seconds is wall time of the whole run."""

    days: list[DayResult] = field(default_factory=list)
    seconds: float = 0.0
    rows_read: int = 0  # input rows, valid or not
    rejected: int = 0  # input rows quarantined (also those of files that gave no day)
    sources: list[str] = field(default_factory=list)  # files read, in order
    reasons: dict[str, int] = field(default_factory=dict)  # quarantine reason -> rows
    # (exchange, symbol) -> [first trade, last trade, trades] of every series the input held, before any filter
    seen: dict[tuple[str, str], list] = field(default_factory=dict)
    instruments: list = field(default_factory=list)  # contract.instruments.Instrument each series' volumes used
    warnings: list[str] = field(default_factory=list)  # unknown instruments, unreachable instrument lists

    @property
    def truncated(self) -> list[str]:
        """Files cut short (their day's rest is marked gap=feed), in order, once each."""
        return list(dict.fromkeys(source for d in self.days if not d.complete for source in d.sources))

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


def saw(summary: BackfillSummary, exchange: str, symbol: str, series: pl.DataFrame) -> None:
    """Remember the first and last trade and the count of a series the input held (for 'nothing to write')."""
    first, last = series[c.TIMESTAMP].min(), series[c.TIMESTAMP].max()
    seen = summary.seen.setdefault((exchange, symbol), [first, last, 0])
    seen[0], seen[1], seen[2] = min(seen[0], first), max(seen[1], last), seen[2] + series.height


def nothing_written(opts: BackfillOptions, summary: BackfillSummary) -> str:
    """Why a backfill wrote no day, naming what the input held."""
    files = ", ".join(summary.sources) or "the input"
    if not summary.seen:
        if summary.rows_read and summary.rejected >= summary.rows_read:
            top = sorted(summary.reasons.items(), key=lambda kv: -kv[1])[:3]
            why = ", ".join(f"{reason}: {n:,}" for reason, n in top)
            return (f"nothing written: all {summary.rows_read:,} rows of {files} were rejected ({why}); "
                    f"they are in the quarantine table (SELECT * FROM quarantine_summary)")
        return f"nothing written: {files} holds no trades"
    held = "; ".join(f"{ex} {sym} {first:%Y-%m-%d %H:%M}..{last:%Y-%m-%d %H:%M} UTC ({n:,} trades)"
                     for (ex, sym), (first, last, n) in sorted(summary.seen.items()))
    wanted = [(ex, sym) for ex, sym in summary.seen
              if (not opts.symbols or sym in opts.symbols) and (not opts.exchange or ex == opts.exchange)]
    if not wanted:
        asked = " ".join(part for part in (opts.exchange, ",".join(opts.symbols)) if part)
        return f"nothing written: no trades of {asked} in the input; it holds {held}"
    bounds = f"--from {opts.from_date or '(open)'} --to {opts.to_date or '(open)'}"
    return f"nothing written: {bounds} excludes every trade of the input; it holds {held}"


def interrupted(summary: BackfillSummary, stop: BaseException) -> str:
    """'interrupted (SIGINT): N days committed (...); nothing of later days was written'."""
    name = getattr(stop, "args", None) and stop.args[0] or "SIGINT"
    if not summary.days:
        return f"interrupted ({name}) before any day was committed; nothing was written"
    days = ", ".join(d.label for d in summary.days)
    return f"interrupted ({name}): {len(summary.days)} days committed ({days}); nothing of later days was written"
