"""Click options shared by several commands (sink selection, timeframes, shards)."""

from __future__ import annotations

from pathlib import Path

import click

from ..sinks.factory import SINK_NAMES, SinkOptions


def bigquery_options(func):
    """Add the BigQuery connection flags (--bq-project, --bq-dataset, ...) to a command."""
    options = [
        click.option("--bq-project", envvar="GOOGLE_CLOUD_PROJECT", help="BigQuery project."),
        click.option("--bq-dataset", envvar="MDSTREAM_BQ_DATASET", help="BigQuery dataset."),
        click.option("--bq-location", envvar="MDSTREAM_BQ_LOCATION", help="BigQuery location, e.g. US."),
        click.option("--bq-api-endpoint", envvar="MDSTREAM_BQ_API_ENDPOINT",
                     help="BigQuery REST endpoint (emulator); implies anonymous credentials."),
        click.option("--bq-write-endpoint", envvar="MDSTREAM_BQ_WRITE_ENDPOINT",
                     help="Storage Write API HOST:PORT (emulator); implies anonymous credentials."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def sink_options(func):
    """Add --sink, --duckdb, --parquet and the BigQuery flags to a command."""
    options = [
        click.option("--sink", "sink", type=click.Choice(SINK_NAMES), default="duckdb", show_default=True,
                     help="Where candles (and ticks) go."),
        click.option("--duckdb", "duckdb_path", type=click.Path(path_type=Path), default=Path("mdstream.duckdb"),
                     show_default=True, envvar="MDSTREAM_DUCKDB", help="DuckDB file (sink duckdb)."),
        click.option("--parquet", "parquet_dir", type=click.Path(path_type=Path), default=Path("parquet"),
                     show_default=True, help="Root folder of the hive-partitioned Parquet sink."),
    ]
    for option in reversed(options):
        func = option(func)
    return bigquery_options(func)


def sink_from(kw: dict) -> SinkOptions:
    """SinkOptions from the keyword arguments sink_options added (they are removed from `kw`)."""
    return SinkOptions(
        kind=kw.pop("sink"),
        duckdb_path=kw.pop("duckdb_path"),
        parquet_dir=kw.pop("parquet_dir"),
        **{name: kw.pop(name) for name in BQ_FLAGS},
    )


def instrument_option(func):
    """Add --instrument (repeatable) to a command: the contract of an instrument the built-in table lacks."""
    return click.option(
        "--instrument", "instrument_specs", multiple=True, metavar="[EXCHANGE:]SYMBOL=KIND[:SIZE[:CURRENCY]]",
        help="Instrument metadata, overriding the venue's list and the built-in table; KIND is spot, linear, "
             "inverse or quanto, SIZE the value of one unit of the trade amount (e.g. "
             "binance-delivery:BTCUSD_PERP=inverse:100:USD). Repeatable.",
    )(func)


def instruments_from(kw: dict, exchange: str | None = None) -> tuple:
    """The Instrument overrides of the --instrument values in `kw` (removed from it)."""
    from ..contract.instruments import parse_override

    return tuple(parse_override(text, exchange) for text in kw.pop("instrument_specs", ()))


def csv_list(text: str | None) -> tuple[str, ...]:
    """'A, B,,C' -> ('A', 'B', 'C')."""
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


BQ_FLAGS = ("bq_project", "bq_dataset", "bq_location", "bq_api_endpoint", "bq_write_endpoint")


def bigquery_config(kw: dict):
    """The BigQueryConfig of the flags bigquery_options added (they are removed from `kw`)."""
    return SinkOptions(kind="bigquery", **{name: kw.pop(name) for name in BQ_FLAGS}).bigquery_config()
