"""Click commands over the local DuckDB file: `query` and `verify`."""

from __future__ import annotations

from pathlib import Path

import click

from .errors import MdstreamError
from .query import FORMATS, render, run_query
from .verify import verify_duckdb

DEFAULT_DB = "./mdstream.duckdb"


@click.command()
@click.argument("sql")
@click.option("--duckdb", "db", default=DEFAULT_DB, show_default=True, type=click.Path(path_type=Path), help="DuckDB file.")
@click.option("--format", "fmt", default="table", show_default=True, type=click.Choice(FORMATS), help="Output format.")
@click.option("--output", type=click.Path(path_type=Path), help="Write to FILE instead of the terminal.")
def query(sql: str, db: Path, fmt: str, output: Path | None) -> None:
    """Run SQL on the DuckDB file (read-only); views: candles_latest, candles_1m, data_quality ...

    \b
    Example:
      mdstream query "SELECT * FROM candles_1m WHERE symbol = 'BTCUSDT' ORDER BY timestamp_in DESC LIMIT 10"
    """
    try:
        render(run_query(db, sql), fmt, output)
    except MdstreamError as exc:
        raise click.ClickException(str(exc)) from exc


@click.command()
@click.option("--duckdb", "db", default=DEFAULT_DB, show_default=True, type=click.Path(path_type=Path), help="DuckDB file.")
@click.option("--symbols", default="", help="Comma-separated symbols (default: all).")
@click.option("--from", "from_", help="First UTC day, YYYY-MM-DD.")
@click.option("--to", help="Day after the last one (exclusive, as backfill), YYYY-MM-DD.")
def verify(db: Path, symbols: str, from_: str | None, to: str | None) -> None:
    """Recompute candles from the stored ticks in SQL and diff them against candles_latest; exit 1 on any difference.

    \b
    Example:
      mdstream verify --duckdb ./mdstream.duckdb --symbols BTCUSDT --from 2024-01-01 --to 2024-01-03  # Jan 1 and 2
    """
    try:
        report = verify_duckdb(db, symbols=symbols.split(",") if symbols else None, from_=from_, to=to)
    except MdstreamError as exc:
        raise click.ClickException(str(exc)) from exc
    for line in report.lines():
        click.echo(line)
    if not report.ok:
        raise click.exceptions.Exit(1)


commands = [query, verify]
