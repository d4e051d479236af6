"""Click commands over the local DuckDB file: `query` and `verify`."""

from __future__ import annotations

from pathlib import Path

import click

from ..ops.formats import FORMATS
from .edge import guarded
from .options import bigquery_config, bigquery_options, duckdb_option, instrument_option, instruments_from, symbols_callback


@click.command()
@click.argument("sql")
@duckdb_option
@click.option("--format", "fmt", default="table", show_default=True, type=click.Choice(FORMATS), help="Output format.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE instead of the terminal.")
@guarded
def query(sql: str, duckdb_path: Path, fmt: str, output: Path | None) -> None:
    """Run SQL on the DuckDB file, read-only and without access to other files or the network;
    views: candles_latest, candles_1m, data_quality ...

    \b
    Example:
      mdstream query "SELECT * FROM candles_1m WHERE symbol = 'BTCUSDT' ORDER BY timestamp_in DESC LIMIT 10"
    """
    from ..ops.query import render, run_query

    render(run_query(duckdb_path, sql), fmt, output)


@click.command()
@duckdb_option
@click.option("--symbols", callback=symbols_callback,
              help="Comma-separated symbols (default: all; required with --bigquery).")
@click.option("--from", "from_", help="First UTC day, YYYY-MM-DD.")
@click.option("--to", help="Day after the last one (exclusive, as in backfill), YYYY-MM-DD.")
@click.option("--bigquery", is_flag=True,
              help="Verify what BigQuery holds (ticks and candles read back) instead of the DuckDB file.")
@instrument_option
@bigquery_options
@guarded
def verify(duckdb_path: Path, symbols: tuple[str, ...], from_: str | None, to: str | None, bigquery: bool, **bq) -> None:
    """Recompute candles from the stored ticks in SQL and diff them against candles_latest; exit 1 on any difference.

    \b
    Example:
      mdstream verify --duckdb ./mdstream.duckdb --symbols BTCUSDT --from 2024-01-01 --to 2024-01-03  # Jan 1 and 2
      mdstream verify --bigquery --bq-dataset market --symbols BTCUSDT --from 2024-01-01 --to 2024-01-02
    """
    wanted = list(symbols) or None
    overrides = instruments_from(bq)
    if bigquery:
        report = _verify_bigquery(wanted, from_, to, bq, overrides)
    else:
        from ..ops.verify import verify_duckdb

        report = verify_duckdb(duckdb_path, symbols=wanted, from_=from_, to=to, instruments=overrides)
    for line in report.lines():
        click.echo(line)
    if not report.ok:
        raise click.exceptions.Exit(1)


def _verify_bigquery(symbols, from_, to, bq: dict, overrides=()):
    """verify_bigquery with the connection flags; symbols and both days are required."""
    from ..contract.errors import ConfigError
    from ..contract.timeframes import day_bounds
    from ..ops.verify_bigquery import verify_bigquery

    if not (symbols and from_ and to):
        raise ConfigError("--bigquery needs --symbols, --from and --to")
    start, end = day_bounds(from_, "--from")[0], day_bounds(to, "--to")[0]
    return verify_bigquery(bigquery_config(bq), symbols=symbols, from_=start, to=end, instruments=overrides)


commands = [query, verify]
