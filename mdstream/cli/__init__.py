"""The `mdstream` command line: thin commands over the library; errors become one line at the edge (edge.py).
Only click and light modules are imported here: each command imports what it uses when it runs."""

from __future__ import annotations

from pathlib import Path

import click

from .. import __version__
from ..contract import timeframes as tfm
from ..jobs.requests import BackfillOptions, default
from .edge import PROCESS, Main, end_process, guarded
from .options import (
    day_callback,
    exchange_callback,
    instrument_option,
    instruments_from,
    sink_from,
    sink_options,
    symbols_callback,
)


@click.group(cls=Main)
@click.version_option(__version__, prog_name="mdstream")
def main() -> None:
    """mdstream: trade ticks -> UTC-aligned candles (15s..1d) + features, in DuckDB, Parquet or BigQuery."""


def entry() -> None:
    """The `mdstream` program and `python -m mdstream`: the command line in a process of its own."""
    PROCESS["own"] = True
    main()


@main.command()
@click.option("--exchange", callback=exchange_callback, help="Tardis exchange id, e.g. binance-futures.")
@click.option("--symbols", callback=symbols_callback, help="Comma-separated symbols, e.g. BTCUSDT,ETHUSDT (upper-cased).")
@click.option("--from", "from_date", callback=day_callback, help="First UTC day, YYYY-MM-DD.")
@click.option("--to", "to_date", callback=day_callback, help="Day after the last one (exclusive, as tardis-dev).")
@click.option("--input", "inputs", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Local Tardis trades file (.csv or .csv.gz); repeatable. Skips downloading.")
@click.option("--timeframes", default=",".join(default(BackfillOptions, "timeframes")), show_default=True,
              help=f"Timeframes to build, of {', '.join(tfm.SUPPORTED_TIMEFRAMES)} (1M, a month, is refused).")
@click.option("--store-ticks", is_flag=True, help="Also store the raw ticks (needed by `mdstream verify`).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=default(BackfillOptions, "cache_dir"),
              show_default=True, envvar="MDSTREAM_CACHE_DIR", help="Where Tardis downloads are kept.")
@click.option("--download-timeout", type=click.FloatRange(min=0.1), default=default(BackfillOptions, "download_timeout"),
              show_default=True, help="Seconds without a downloaded byte before a Tardis download is given up.")
@click.option("--shard", help="INDEX/COUNT: only this shard's (date, symbol) tasks.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@instrument_option
@sink_options
@guarded
def backfill(**kw) -> None:
    """Build candles and features for historical days and write them, one atomic day at a time.

    Exit status: 0 done, 1 error, 3 finished with data gaps (a truncated input), 130 interrupted (the days
    listed as committed are whole; nothing of later days was written).

    \b
    Example:
      mdstream backfill --exchange binance-futures --symbols BTCUSDT,ETHUSDT --from 2024-01-01 --to 2024-01-03
      mdstream backfill --input data/sample/binance-futures_trades_2024-01-01_BTCUSDT.csv.gz --store-ticks
      mdstream backfill --exchange binance-delivery --symbols BTCUSD_PERP --from 2024-08-08 --to 2024-08-09
    """
    from ..jobs.backfill_app import run_with_progress
    from ..jobs.shard import parse_shard

    sink_opts = sink_from(kw)
    opts = BackfillOptions(
        exchange=kw["exchange"], symbols=kw["symbols"], from_date=kw["from_date"], to_date=kw["to_date"],
        inputs=tuple(kw["inputs"]), timeframes=tfm.parse_list(kw["timeframes"]), store_ticks=kw["store_ticks"],
        cache_dir=kw["cache_dir"], shard=parse_shard(kw["shard"]) if kw["shard"] else None,
        download_timeout=kw["download_timeout"],
        instruments=instruments_from(kw, kw["exchange"]),
    )
    run_with_progress(opts, sink_opts, quiet=kw["quiet"])
    end_process()  # every day is committed and the sink closed


@main.command()
@click.option("--folder", type=click.Path(file_okay=False, path_type=Path), default=Path("data/sample"),
              show_default=True, help="Where the simulated day files are written.")
@sink_options
@guarded
def demo(folder: Path, **kw) -> None:
    """Simulate a trading day for two symbols, backfill it (no network, no credentials) and show the result.

    \b
    Example:
      mdstream demo --duckdb demo.duckdb
    """
    from ..inputs.sample import demo_files
    from ..jobs.backfill_app import run_with_progress
    from ..ops.query import show_latest

    sink_opts = sink_from(kw)
    click.echo(f"Simulating trades into {folder}/ ...")
    files = demo_files(folder)
    run_with_progress(BackfillOptions(inputs=tuple(files), store_ticks=True), sink_opts, quiet=False)
    if sink_opts.kind == "duckdb":
        show_latest(sink_opts.duckdb_path)


def _register() -> None:
    """Attach the commands that live in their own modules (each imports only click at load time)."""
    from . import bigquery as cli_bigquery
    from . import local as cli_local
    from . import ops as cli_ops
    from . import stream as cli_stream

    for module in (cli_local, cli_stream, cli_bigquery, cli_ops):
        for command in module.commands:
            main.add_command(command)


_register()
