"""The `mdstream` command line: thin commands over the library; library errors become clean messages here."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

from .. import __version__
from ..contract import timeframes as tfm
from ..contract.clock import WallClock
from ..contract.errors import MdstreamError
from .options import csv_list, instrument_option, instruments_from, sink_from, sink_options


class Main(click.Group):
    """Group that turns library errors into ClickException at the edge."""

    def invoke(self, ctx):
        """Run the command; MdstreamError -> a one-line error and exit code 1."""
        try:
            return super().invoke(ctx)
        except MdstreamError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=Main)
@click.version_option(__version__, prog_name="mdstream")
def main() -> None:
    """mdstream: trade ticks -> UTC-aligned candles (15s..1d) + features, in DuckDB, Parquet or BigQuery."""


def _date(_ctx, param, value):
    """A YYYY-MM-DD option value as a date (a bad one is a usage error naming the option)."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not a day YYYY-MM-DD ({exc})", param=param) from exc


@main.command()
@click.option("--exchange", help="Tardis exchange id, e.g. binance-futures.")
@click.option("--symbols", help="Comma-separated symbols, e.g. BTCUSDT,ETHUSDT.")
@click.option("--from", "from_date", callback=_date, help="First UTC day, YYYY-MM-DD.")
@click.option("--to", "to_date", callback=_date, help="Day after the last one (exclusive, as tardis-dev).")
@click.option("--input", "inputs", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Local Tardis trades file (.csv or .csv.gz); repeatable. Skips downloading.")
@click.option("--timeframes", default=",".join(tfm.ALL_TIMEFRAMES), show_default=True, help="Timeframes to build.")
@click.option("--store-ticks", is_flag=True, help="Also store the raw ticks (needed by `mdstream verify`).")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=Path("datasets"), show_default=True,
              envvar="MDSTREAM_CACHE_DIR", help="Where Tardis downloads are kept.")
@click.option("--shard", help="INDEX/COUNT: only this shard's (date, symbol) tasks.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@instrument_option
@sink_options
def backfill(**kw) -> None:
    """Build candles and features for historical days and write them, one atomic day at a time.

    \b
    Example:
      mdstream backfill --exchange binance-futures --symbols BTCUSDT,ETHUSDT --from 2024-01-01 --to 2024-01-03
      mdstream backfill --input binance-futures_trades_2024-01-01_BTCUSDT.csv.gz --store-ticks
      mdstream backfill --exchange binance-delivery --symbols BTCUSD_PERP --from 2024-08-08 --to 2024-08-09
    """
    from ..jobs.backfill import BackfillOptions
    from ..jobs.backfill_app import run_with_progress
    from ..jobs.shard import parse_shard

    sink_opts = sink_from(kw)
    opts = BackfillOptions(
        exchange=kw["exchange"], symbols=csv_list(kw["symbols"]), from_date=kw["from_date"], to_date=kw["to_date"],
        inputs=tuple(kw["inputs"]), timeframes=tfm.parse_list(kw["timeframes"]), store_ticks=kw["store_ticks"],
        cache_dir=kw["cache_dir"], shard=parse_shard(kw["shard"]) if kw["shard"] else None,
        instruments=instruments_from(kw, kw["exchange"]),
    )
    run_with_progress(opts, sink_opts, WallClock(), quiet=kw["quiet"])


@main.command()
@click.option("--folder", type=click.Path(path_type=Path), default=Path("data/sample"), show_default=True,
              help="Where the simulated day files are written.")
@sink_options
def demo(folder: Path, **kw) -> None:
    """Simulate a trading day for two symbols, backfill it (no network, no credentials) and show the result.

    \b
    Example:
      mdstream demo --duckdb demo.duckdb
    """
    from ..inputs.sample import demo_files
    from ..jobs.backfill import BackfillOptions
    from ..jobs.backfill_app import run_with_progress
    from ..ops.query import show_latest

    sink_opts = sink_from(kw)
    click.echo(f"Simulating trades into {folder}/ ...")
    files = demo_files(folder)
    opts = BackfillOptions(inputs=tuple(files), timeframes=tfm.ALL_TIMEFRAMES, store_ticks=True)
    run_with_progress(opts, sink_opts, WallClock(), quiet=False)
    if sink_opts.kind == "duckdb":
        show_latest(sink_opts.duckdb_path)


def _register() -> None:
    """Attach the commands that live in their own modules."""
    from . import bigquery as cli_bigquery
    from . import local as cli_local
    from . import ops as cli_ops
    from . import stream as cli_stream

    for module in (cli_local, cli_stream, cli_bigquery, cli_ops):
        for command in module.commands:
            main.add_command(command)


_register()
