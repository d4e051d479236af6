"""Ad-hoc SQL over the DuckDB file and rendering of the result. The process itself is locked down, not only
the database: read-only, no access to other files or the network (no COPY TO, EXPORT, ATTACH, read_csv of
arbitrary paths, INSTALL or LOAD), and the configuration locked so the query cannot undo that."""

from __future__ import annotations

import sys
from pathlib import Path

from ..contract.errors import ConfigError, MdstreamError
from .formats import FORMATS

# Set when the connection opens; lock_configuration (set last) keeps a query from changing them back.
LOCKDOWN = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
}
TABLES = ("candles", "ticks", "quarantine")


def run_query(db: Path, sql: str):
    """Result of `sql` (a Polars DataFrame) on a locked-down read-only connection to `db`; ConfigError
    'no data yet' when the result is empty because the file holds nothing at all."""
    import duckdb

    from ..sinks.duckdb_schema import connect_waiting

    db = Path(db)
    if not db.is_file():
        raise ConfigError(f"DuckDB file {db} does not exist (run a backfill or stream first, or pass --duckdb)")
    try:
        con = connect_waiting(db, read_only=True, config=LOCKDOWN)
        con.execute("SET lock_configuration = true")
    except duckdb.Error as exc:
        from ..sinks.failures import describe

        raise MdstreamError(describe(exc, f"opening {db} read-only")) from exc
    try:
        relation = con.sql(sql)
        if relation is None:  # a statement without a result (SET, PRAGMA ...)
            return _frame(None)
        frame = _frame(relation.to_arrow_table())
        if frame.height == 0 and _empty(con):
            raise ConfigError(f"no data yet in {db}: run `mdstream backfill` or `mdstream stream` into it first")
        return frame
    except duckdb.Error as exc:
        raise MdstreamError(f"query failed: {_first_line(exc)}") from exc
    finally:
        con.close()


def _first_line(exc: BaseException) -> str:
    """First line of an error message."""
    return next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)


def _empty(con) -> bool:
    """True when none of the mdstream tables exists or holds a row."""
    present = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    return not any(con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {t} LIMIT 1)").fetchall()[0][0]
                   for t in TABLES if t in present)


def _frame(table):
    """A Polars frame of an Arrow table; a column Polars cannot hold (UNION, INTERVAL ...) becomes text."""
    import polars as pl
    import pyarrow as pa

    if table is None:
        return pl.DataFrame()
    columns = []
    for name, column in zip(table.column_names, table.columns):
        try:
            columns.append(pl.from_arrow(pa.table({name: column})).to_series())
        except (pl.exceptions.PolarsError, pa.ArrowException, TypeError, ValueError):
            columns.append(pl.Series(name, [None if v is None else str(v) for v in column.to_pylist()], pl.String))
    return pl.DataFrame(columns)


def _plain(dtype) -> bool:
    """Whether Polars' own CSV writer takes the dtype (numbers, text, times, booleans, decimals)."""
    return not (dtype.is_nested() or dtype.is_object() or str(dtype) in ("Binary", "Null"))


def flat(df):
    """`df` with every column a CSV writer takes: binary as hex text, nested values (struct, list, array,
    map) as JSON text."""
    import polars as pl

    return df.with_columns([pl.Series(name, [None if v is None else _json(v) if not isinstance(v, bytes) else v.hex()
                                             for v in df[name].to_list()], pl.String)
                            for name, dtype in df.schema.items() if not _plain(dtype)])


def to_json(df) -> str:
    """`df` as a JSON array of records; nested values stay JSON, binary becomes hex text."""
    if all(_plain(dtype) or dtype.is_nested() and "Binary" not in str(dtype) and "Map" not in str(dtype)
           for dtype in df.schema.values()):
        return df.write_json()
    return _json(df.rows(named=True))


def _hex_or_text(value):
    """orjson fallback: bytes as hex, anything else (Decimal, timedelta ...) as its text."""
    return value.hex() if isinstance(value, (bytes, bytearray)) else str(value)


def _json(value) -> str:
    """A value as JSON text (map keys as text)."""
    import orjson

    return orjson.dumps(value, default=_hex_or_text, option=orjson.OPT_NON_STR_KEYS).decode()


def to_table(df, *, title: str | None = None):
    """A rich Table of `df`: one column per frame column, numbers right-aligned, nulls shown as empty."""
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for name, dtype in df.schema.items():
        table.add_column(name, justify="right" if dtype.is_numeric() else "left", overflow="fold")
    for row in df.iter_rows():
        table.add_row(*("" if value is None else str(value) for value in row))
    return table


def render(df, fmt: str = "table", out: Path | None = None, *, console=None) -> None:
    """Write `df` as a terminal table, CSV, JSON (array of records) or Parquet to `out` or standard output."""
    from rich.console import Console

    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    if fmt == "parquet":
        if out is None:
            raise ConfigError("--format parquet needs --output FILE")
        df.write_parquet(out)
    elif fmt == "csv":
        _emit(flat(df).write_csv(), out)
    elif fmt == "json":
        _emit(to_json(df) + "\n", out)
    elif out is not None:
        with open(out, "w", encoding="utf-8") as handle:
            Console(file=handle, width=table_width(df)).print(to_table(df))
    else:
        console = console or Console()
        if not console.is_terminal:  # piped or captured: never fold the columns
            console = Console(file=console.file, width=table_width(df))
        console.print(to_table(df, title=f"{df.height:,} rows"))


def table_width(df) -> int:
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


def show_latest(db: Path, console=None) -> None:
    """Print the newest 1m candles of every symbol from the DuckDB file."""
    from rich.console import Console

    df = run_query(
        db,
        "SELECT symbol, strftime(timestamp_in AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M') AS minute_utc, open, high, low, "
        "close, round(volume, 3) AS volume, trades, round(rsi_5, 1) AS rsi_5, round(vwap_day, 2) AS vwap_day "
        "FROM candles_latest WHERE timeframe = '1m' "
        "QUALIFY row_number() OVER (PARTITION BY symbol ORDER BY timestamp_in DESC) <= 3 ORDER BY symbol, timestamp_in",
    )
    (console or Console(width=None if sys.stdout.isatty() else 120)).print(to_table(df, title=f"Latest 1m candles in {db}"))
