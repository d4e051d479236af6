"""Click options shared by several commands: the DuckDB file (one `--duckdb`, honouring MDSTREAM_DUCKDB, for
every command), sink selection, BigQuery flags, symbols. Defaults come from the request objects."""

from __future__ import annotations

from pathlib import Path

import click

from ..contract import names
from ..contract.dates import parse_day, parse_time
from ..contract.errors import ConfigError
from ..jobs.requests import default
from ..sinks.factory import SINK_NAMES, SinkOptions

DUCKDB_ENV = "MDSTREAM_DUCKDB"
BQ_FLAGS = ("bq_project", "bq_dataset", "bq_location", "bq_api_endpoint", "bq_write_endpoint")


def duckdb_option(func):
    """Add --duckdb FILE (env MDSTREAM_DUCKDB), the same option and default for every command."""
    return click.option(
        "--duckdb", "duckdb_path", type=click.Path(dir_okay=False, path_type=Path),
        default=default(SinkOptions, "duckdb_path"), show_default=True, envvar=DUCKDB_ENV,
        help=f"DuckDB file (env {DUCKDB_ENV}).",
    )(func)


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
        click.option("--sink", "sink", type=click.Choice(SINK_NAMES), default=default(SinkOptions, "kind"),
                     show_default=True, help="Where candles (and ticks) go."),
        duckdb_option,
        click.option("--parquet", "parquet_dir", type=click.Path(file_okay=False, path_type=Path),
                     default=default(SinkOptions, "parquet_dir"), show_default=True,
                     help="Root folder of the hive-partitioned Parquet sink."),
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


def parse_symbols(text: str | None) -> tuple[str, ...]:
    """Comma-separated venue symbols, checked and upper-cased (as Tardis and the exchanges publish them)."""
    return names.symbols(text)


def symbols_callback(_ctx, param, value):
    """Click callback: --symbols checked and upper-cased; a bad one is a usage error naming the option."""
    try:
        return names.symbols(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param=param) from exc


def _parsed_by(parse):
    """A click callback giving `parse(value, option name)`; a ConfigError becomes a usage error naming the option."""
    def callback(_ctx, param, value):
        if not value:
            return None
        try:
            return parse(value, param.opts[0])
        except ConfigError as exc:
            raise click.BadParameter(str(exc), param=param) from exc
    return callback


day_callback = _parsed_by(parse_day)  # YYYY-MM-DD -> date
time_callback = _parsed_by(parse_time)  # ISO 8601 (naive = UTC) -> aware datetime


def exchange_callback(_ctx, param, value):
    """Click callback: --exchange checked and lower-cased (None stays None)."""
    if value is None:
        return None
    try:
        return names.exchange(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param=param) from exc


def bigquery_config(kw: dict):
    """The BigQueryConfig of the flags bigquery_options added (they are removed from `kw`)."""
    return SinkOptions(kind="bigquery", **{name: kw.pop(name) for name in BQ_FLAGS}).bigquery_config()
