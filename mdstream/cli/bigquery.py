"""`mdstream bigquery ...`: create or migrate the dataset, tables and views; estimate cost."""

from __future__ import annotations

import click

from .edge import guarded
from .options import bigquery_config, bigquery_options


@click.group()
def bigquery() -> None:
    """BigQuery warehouse: tables, views and cost."""


@bigquery.command()
@bigquery_options
@guarded
def init(**flags) -> None:
    """Create the dataset, tables (partitioned, clustered, described) and views; add new columns.

    Safe to run again: existing tables keep their data and only gain missing columns.

    \b
    Example:
      GOOGLE_CLOUD_PROJECT=my-project mdstream bigquery init --bq-dataset market
    """
    from ..sinks.bigquery.config import rest_client
    from ..sinks.bigquery.setup import initialize

    config = bigquery_config(flags)
    added, views = initialize(rest_client(config), config, force_views=True)
    for table, columns in added.items():
        note = f"added {', '.join(columns)}" if columns else "up to date"
        click.echo(f"{config.table_id(table)}: {note}")
    click.echo(f"views: {', '.join(views)}")


@bigquery.command()
@click.option("--trades-per-second", type=float, default=20.0, show_default=True,
              help="Average trade rate of the symbol, for the raw-tick estimate.")
@guarded
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
