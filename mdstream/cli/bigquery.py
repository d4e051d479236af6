"""`mdstream bigquery ...`: create or migrate the dataset, tables and views; estimate cost."""

from __future__ import annotations

import click

from ..contract.errors import MdstreamError
from .edge import guarded
from .options import bigquery_config, bigquery_options


@click.group()
def bigquery() -> None:
    """BigQuery warehouse: tables, views and cost."""


@bigquery.command()
@bigquery_options
def init(**flags) -> None:
    """Create the dataset, tables (partitioned, clustered, described) and views; add new columns.

    Safe to run again: existing tables keep their data and only gain missing columns.

    \b
    Example:
      GOOGLE_CLOUD_PROJECT=my-project mdstream bigquery init --bq-dataset market
    """
    from ..sinks.bigquery.config import rest_client
    from ..sinks.bigquery.schema import ensure_tables
    from ..sinks.bigquery.views import create_views

    try:
        config = bigquery_config(flags)
        client = rest_client(config)
        added = ensure_tables(client, config, timeout=config.timeout_seconds)
        views = create_views(client, config)
    except MdstreamError as error:
        raise click.ClickException(str(error)) from error
    for table, columns in added.items():
        note = f"added {', '.join(columns)}" if columns else "up to date"
        click.echo(f"{config.table_id(table)}: {note}")
    click.echo(f"views: {', '.join(views)}")


@bigquery.command()
@click.option("--trades-per-second", type=float, default=20.0, show_default=True,
              help="Average trade rate of the symbol, for the raw-tick estimate.")
def cost(trades_per_second: float) -> None:
    """Monthly Storage Write API cost of one symbol: candles at six timeframes and raw ticks.

    \b
    Example:
      mdstream bigquery cost --trades-per-second 50
    """
    from ..sinks.bigquery.cost import candles_per_month, ticks_per_month

    click.echo(candles_per_month().line("candles, 6 timeframes"))
    click.echo(ticks_per_month(trades_per_second).line(f"raw ticks at {trades_per_second:g}/s"))


commands = [bigquery]
