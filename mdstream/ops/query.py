"""Ad-hoc SQL over the DuckDB file (read-only) and rendering of the result."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import polars as pl
from rich.console import Console
from rich.table import Table

from ..contract.errors import ConfigError, MdstreamError
from ..sinks.duckdb_schema import connect_waiting

FORMATS = ("table", "csv", "json", "parquet")


def run_query(db: Path, sql: str) -> pl.DataFrame:
    """Result of `sql` on a read-only connection to `db` (views such as candles_latest included)."""
    db = Path(db)
    if not db.is_file():
        raise ConfigError(f"DuckDB file {db} does not exist (run a backfill or stream first, or pass --duckdb)")
    try:
        con = connect_waiting(db, read_only=True)
    except duckdb.Error as exc:
        raise MdstreamError(f"cannot open {db} read-only: {exc}") from exc
    try:
        relation = con.sql(sql)
        if relation is None:  # a statement without a result (SET, PRAGMA ...)
            return pl.DataFrame()
        return pl.from_arrow(relation.to_arrow_table())
    except duckdb.Error as exc:
        raise MdstreamError(f"query failed: {exc}") from exc
    finally:
        con.close()


def to_table(df: pl.DataFrame, *, title: str | None = None) -> Table:
    """A rich Table of `df`: one column per frame column, numbers right-aligned, nulls shown as empty."""
    table = Table(title=title, show_lines=False)
    for name, dtype in df.schema.items():
        table.add_column(name, justify="right" if dtype.is_numeric() else "left", overflow="fold")
    for row in df.iter_rows():
        table.add_row(*("" if value is None else str(value) for value in row))
    return table


def render(df: pl.DataFrame, fmt: str = "table", out: Path | None = None, *, console: Console | None = None) -> None:
    """Write `df` as a terminal table, CSV, JSON (array of records) or Parquet to `out` or standard output."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    if fmt == "parquet":
        if out is None:
            raise ConfigError("--format parquet needs --output FILE")
        df.write_parquet(out)
    elif fmt == "csv":
        text = df.write_csv()
        _emit(text, out)
    elif fmt == "json":
        _emit(df.write_json() + "\n", out)
    elif out is not None:
        with open(out, "w", encoding="utf-8") as handle:
            Console(file=handle, width=table_width(df)).print(to_table(df))
    else:
        console = console or Console()
        if not console.is_terminal:  # piped or captured: never fold the columns
            console = Console(file=console.file, width=table_width(df))
        console.print(to_table(df, title=f"{df.height:,} rows"))


def table_width(df: pl.DataFrame) -> int:
    """Characters a table of `df` needs so that no column is folded: widest cell + 3 per column, + 1."""
    widths = [
        max([len(name), *(len(str(v)) for v in df[name].head(1000).to_list())]) + 3 for name in df.columns
    ]
    return max(80, sum(widths) + 1)


def _emit(text: str, out: Path | None) -> None:
    """Text to the file `out`, or to standard output."""
    if out is None:
        sys.stdout.write(text)
    else:
        Path(out).write_text(text, encoding="utf-8")


def show_latest(db: Path, console: Console | None = None) -> None:
    """Print the newest 1m candles of every symbol from the DuckDB file."""
    df = run_query(
        db,
        "SELECT symbol, strftime(timestamp_in AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M') AS minute_utc, open, high, low, "
        "close, round(volume, 3) AS volume, trades, round(rsi_5, 1) AS rsi_5, round(vwap_day, 2) AS vwap_day "
        "FROM candles_latest WHERE timeframe = '1m' "
        "QUALIFY row_number() OVER (PARTITION BY symbol ORDER BY timestamp_in DESC) <= 3 ORDER BY symbol, timestamp_in",
    )
    (console or Console(width=None if sys.stdout.isatty() else 120)).print(to_table(df, title=f"Latest 1m candles in {db}"))
