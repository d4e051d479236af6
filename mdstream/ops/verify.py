"""Local verification: candles recomputed from stored ticks (candles_from_ticks.sql) against candles_latest."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import polars as pl

from ..contract import columns as c
from ..contract import schema
from ..contract.errors import ConfigError, MdstreamError
from ..contract.instruments import INSTRUMENT_SCHEMA, Instrument
from ..contract.timeframes import day_bounds
from ..inputs.instruments import InstrumentBook
from ..sinks import sqlfiles
from ..sinks.duckdb_schema import connect_waiting

WINDOW_KEY = (c.EXCHANGE, c.SYMBOL, c.TIMEFRAME, c.TIMESTAMP_IN)
SERIES = (c.EXCHANGE, c.SYMBOL, c.TIMEFRAME)
COMPARED = (
    c.OPEN, c.HIGH, c.LOW, c.CLOSE, c.VOLUME, c.BASE_VOLUME, c.QUOTE_VOLUME, c.BUY_VOLUME, c.SELL_VOLUME, c.TRADES, c.VWAP,
    c.FIRST_TRADE_AT, c.LAST_TRADE_AT,
)
MISMATCH_SCHEMA = {
    **{k: pl.String() for k in SERIES}, c.TIMESTAMP_IN: pl.Datetime("us", "UTC"),
    "problem": pl.String(), "column": pl.String(), "expected": pl.String(), "actual": pl.String(),
}
MISSING, EXTRA, DIFFERS = "missing", "extra", "differs"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass
class VerifyReport:
    """Outcome of a verification: windows compared and every mismatch by key."""

    windows: int
    series: int
    mismatches: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=MISMATCH_SCHEMA))
    unverified: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when something was compared and nothing differed."""
        return self.windows > 0 and self.mismatches.height == 0

    def lines(self, limit: int = 50) -> list[str]:
        """Human-readable lines: one per mismatch (up to `limit`), then a summary."""
        out = []
        for row in self.mismatches.head(limit).iter_rows(named=True):
            where = f"{row[c.EXCHANGE]} {row[c.SYMBOL]} {row[c.TIMEFRAME]} {row[c.TIMESTAMP_IN]:%Y-%m-%d %H:%M:%S}"
            detail = f" {row['column']}: expected {row['expected']}, stored {row['actual']}" if row["column"] else ""
            out.append(f"{row['problem']:7} {where}{detail}")
        if self.mismatches.height > limit:
            out.append(f"... and {self.mismatches.height - limit:,} more")
        if self.unverified:
            out.append(f"not verifiable (no ticks stored): {', '.join(self.unverified)}")
        verdict = "OK" if self.ok else ("NOTHING VERIFIED" if self.windows == 0 else "MISMATCH")
        out.append(f"{verdict}: {self.windows:,} windows in {self.series} series compared, {self.mismatches.height:,} mismatches")
        return out


def _close(a: pl.Expr, b: pl.Expr, rel_tol: float) -> pl.Expr:
    """Equal within rel_tol relative (|a - b| <= rel_tol * max(|a|, |b|)), or both null."""
    both_null = a.is_null() & b.is_null()
    near = (a - b).abs() <= rel_tol * pl.max_horizontal(a.abs(), b.abs())
    return both_null | near.fill_null(False)


def diff_candles(expected: pl.DataFrame, actual: pl.DataFrame, *, rel_tol: float = 1e-9) -> pl.DataFrame:
    """Mismatches (MISMATCH_SCHEMA) between recomputed and stored candles, limited to the windows each
    recomputed series spans (first..last window with trades); floats compared to rel_tol relative."""
    bounds = expected.group_by(SERIES).agg(
        pl.col(c.TIMESTAMP_IN).min().alias("_lo"), pl.col(c.TIMESTAMP_IN).max().alias("_hi")
    )
    actual = (
        actual.join(bounds, on=SERIES, how="inner")
        .filter(pl.col(c.TIMESTAMP_IN).is_between(pl.col("_lo"), pl.col("_hi")))
        .drop("_lo", "_hi")
    )
    joined = expected.select(*WINDOW_KEY, *COMPARED).with_columns(pl.lit(True).alias("_e")).join(
        actual.select(*WINDOW_KEY, *COMPARED).with_columns(pl.lit(True).alias("_a")),
        on=list(WINDOW_KEY), how="full", coalesce=True, suffix="_actual",
    )
    parts = [
        joined.filter(pl.col("_a").is_null()).select(*WINDOW_KEY, pl.lit(MISSING).alias("problem")),
        joined.filter(pl.col("_e").is_null()).select(*WINDOW_KEY, pl.lit(EXTRA).alias("problem")),
    ]
    both = joined.filter(pl.col("_a") & pl.col("_e"))
    for name in COMPARED:
        a, b = pl.col(name), pl.col(f"{name}_actual")
        same = _close(a, b, rel_tol) if expected.schema[name] == pl.Float64 else a.eq_missing(b)
        parts.append(
            both.filter(~same).select(
                *WINDOW_KEY, pl.lit(DIFFERS).alias("problem"), pl.lit(name).alias("column"),
                a.cast(pl.String).alias("expected"), b.cast(pl.String).alias("actual"),
            )
        )
    mismatches = pl.concat([p.select([pl.col(k).cast(t) if k in p.columns else pl.lit(None, t).alias(k)
                                      for k, t in MISMATCH_SCHEMA.items()]) for p in parts])
    return mismatches.sort([*WINDOW_KEY, "column"], nulls_last=False)


def _day(value: str | date | None, name: str) -> datetime | None:
    """Midnight UTC of a YYYY-MM-DD value (None stays None)."""
    return day_bounds(value, name)[0] if value else None


def _epoch_us(moment: datetime | None) -> int | None:
    """Exact epoch microseconds of an aware datetime (None stays None)."""
    return None if moment is None else (moment - EPOCH) // timedelta(microseconds=1)


def instruments_of(con: duckdb.DuckDBPyConnection, book: InstrumentBook) -> pl.DataFrame:
    """INSTRUMENT_SCHEMA rows of every (exchange, symbol) in the `ticks` table, resolved by `book` as a run
    resolves them (overrides, venue list or its cache, built-in table)."""
    pairs = con.execute("SELECT DISTINCT exchange, symbol FROM ticks ORDER BY ALL").fetchall()
    return book.frame(pairs)


def recompute(con: duckdb.DuckDBPyConnection, *, symbols: Sequence[str] | None = None,
              start: datetime | None = None, end: datetime | None = None,
              instruments: pl.DataFrame | None = None) -> pl.DataFrame:
    """Candles of every timeframe recomputed by candles_from_ticks.sql from the `ticks` table in [start, end);
    volumes by `instruments` (INSTRUMENT_SCHEMA; unlisted series are linear, size 1)."""
    params = {"from_us": _epoch_us(start), "to_us": _epoch_us(end), "symbols": list(symbols) if symbols else None}
    rules = instruments if instruments is not None else pl.DataFrame(schema=INSTRUMENT_SCHEMA)
    con.register("instruments", schema.ArrowView(rules.select(list(INSTRUMENT_SCHEMA))))
    try:
        return schema.from_stream(con.sql(sqlfiles.read("duckdb/candles_from_ticks.sql"), params=params))
    finally:
        con.unregister("instruments")


def verify_duckdb(db: Path, *, symbols: Sequence[str] | None = None, from_: str | date | None = None,
                  to: str | date | None = None, rel_tol: float = 1e-9,
                  instruments: Iterable[Instrument] = ()) -> VerifyReport:
    """Recompute candles from the stored ticks and diff them against candles_latest over the UTC days
    [from_, to) (`to` exclusive, as in backfill); floats compared to rel_tol relative; `instruments` are the
    --instrument overrides the writing run was given."""
    db = Path(db)
    if not db.is_file():
        raise ConfigError(f"DuckDB file {db} does not exist")
    start, end = _day(from_, "--from"), _day(to, "--to")
    symbols = [s.strip() for s in symbols if s.strip()] if symbols else None
    try:
        # A stream holds the file only while it flushes: wait for it rather than fail.
        con = connect_waiting(db, read_only=True)
    except duckdb.Error as exc:
        from ..sinks.failures import describe

        raise MdstreamError(describe(exc, f"opening {db} read-only")) from exc
    try:
        rules = instruments_of(con, InstrumentBook(instruments))
        expected = recompute(con, symbols=symbols, start=start, end=end, instruments=rules)
        stored = schema.from_stream(con.sql(
            f"SELECT {', '.join(WINDOW_KEY + COMPARED)} FROM candles_latest "
            "WHERE ($symbols IS NULL OR list_contains($symbols, symbol)) "
            "AND ($start IS NULL OR timestamp_in >= $start) AND ($end IS NULL OR timestamp_in < $end)",
            params={"symbols": symbols, "start": start, "end": end},
        ))
    except duckdb.Error as exc:
        raise MdstreamError(f"verification query on {db} failed: {exc}") from exc
    finally:
        con.close()
    return build_report(expected, stored, rel_tol=rel_tol)


def build_report(expected: pl.DataFrame, stored: pl.DataFrame, *, rel_tol: float = 1e-9) -> VerifyReport:
    """VerifyReport of recomputed (`expected`) against stored candles; series without ticks are listed unverified.
    Only the series (exchange, symbol, timeframe) the pipeline wrote are compared: a run may build fewer timeframes."""
    expected = expected.join(stored.select(SERIES).unique(), on=list(SERIES), how="semi")
    have_ticks = expected.select(SERIES).unique()
    unverified = stored.select(SERIES).unique().join(have_ticks, on=list(SERIES), how="anti").sort(list(SERIES))
    return VerifyReport(
        windows=expected.height,
        series=have_ticks.height,
        mismatches=diff_candles(expected, stored, rel_tol=rel_tol),
        unverified=[" ".join(row) for row in unverified.iter_rows()],
    )
