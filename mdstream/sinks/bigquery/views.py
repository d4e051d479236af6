"""SQL against BigQuery: the reader views, the day replacement DML and the verify read-back."""

from __future__ import annotations

import re
from datetime import datetime
from string import Template

import polars as pl

from ...contract import schema as s
from ...contract.dates import parse_time
from .. import sqlfiles
from .config import BigQueryConfig, rest_client
from .writer import translate

VIEW_NAMES = ("candles_latest", *sqlfiles.view_names(),
              "features", "daily_summary", "ingest_latency", "data_quality", "quarantine_summary")


def render(relative: str, config: BigQueryConfig, **names: str) -> str:
    """Text of sql/bigquery/<relative> with ${project}, ${dataset} and `names` filled in."""
    return Template(sqlfiles.read(f"bigquery/{relative}")).substitute(project=config.project,
                                                                       dataset=config.dataset, **names)


def statements(sql: str) -> list[str]:
    """`sql` split into statements at semicolons that end a line; comment-only pieces dropped."""
    parts = re.split(r";\s*$", sql, flags=re.MULTILINE)
    cleaned = ("\n".join(line for line in part.splitlines() if not line.strip().startswith("--")).strip()
               for part in parts)
    return [part for part in cleaned if part]


def run(client, sql: str, config: BigQueryConfig, params: list | None = None, what: str = "a query"):
    """Run one statement and wait for it (bounded by the config timeout); the finished job."""
    from google.cloud import bigquery

    job_config = bigquery.QueryJobConfig(query_parameters=params or [])
    try:
        job = client.query(sql, job_config=job_config, location=config.location,
                           retry=bigquery.DEFAULT_RETRY.with_deadline(config.timeout_seconds),
                           timeout=config.timeout_seconds)
        job.result(timeout=config.timeout_seconds)
    except Exception as error:  # noqa: BLE001 - translated into the sink's errors
        raise translate(error, what) from error
    return job


def create_views(client, config: BigQueryConfig) -> list[str]:
    """Create or replace every view of sql/bigquery/views.sql; the view names created."""
    created = []
    for statement in statements(render("views.sql", config)):
        name = re.search(r"VIEW\s+`[^`]*\.([A-Za-z0-9_]+)`", statement)
        run(client, statement, config, what=f"creating view {name[1] if name else '?'}")
        created.append(name[1] if name else "?")
    return created


def views_exist(client, config: BigQueryConfig, *, retry=None) -> bool:
    """Whether every view of VIEW_NAMES exists in the dataset."""
    tables = client.list_tables(f"{config.project}.{config.dataset}", retry=retry, timeout=config.timeout_seconds)
    return set(VIEW_NAMES) <= {t.table_id for t in tables}


def read_back(config: BigQueryConfig, sql_file: str, table_schema: dict, symbols, from_: datetime | str,
              to: datetime | str, *, client=None) -> pl.DataFrame:
    """Rows of sql/bigquery/`sql_file` for `symbols` and [from_, to), conformed to `table_schema`."""
    from google.cloud import bigquery

    what = f"reading {sql_file.removesuffix('.sql').removeprefix('read_')} back"
    client = client or rest_client(config)
    params = [bigquery.ArrayQueryParameter("symbols", "STRING", list(symbols)),
              bigquery.ScalarQueryParameter("from_ts", "TIMESTAMP", parse_time(from_, "from")),
              bigquery.ScalarQueryParameter("to_ts", "TIMESTAMP", parse_time(to, "to"))]
    job = run(client, render(sql_file, config), config, params, what=what)
    try:
        frame = pl.from_arrow(job.to_arrow(create_bqstorage_client=False))
    except Exception as error:  # noqa: BLE001 (the client raises many types; translate names them)
        raise translate(error, what) from error
    if not isinstance(frame, pl.DataFrame) or frame.width == 0:
        return s.empty(table_schema)
    return s.conform(frame, table_schema)


def read_candles(config: BigQueryConfig, symbols: list[str] | tuple[str, ...], from_: datetime | str,
                 to: datetime | str, *, client=None) -> pl.DataFrame:
    """Candles of `symbols` with timestamp_in in [from_, to) from candles_latest, conformed to CANDLE_SCHEMA."""
    return read_back(config, "read_candles.sql", s.CANDLE_SCHEMA, symbols, from_, to, client=client)


def read_ticks(config: BigQueryConfig, symbols: list[str] | tuple[str, ...], from_: datetime | str,
               to: datetime | str, *, client=None) -> pl.DataFrame:
    """Raw ticks of `symbols` with timestamp in [from_, to), conformed to TICK_SCHEMA."""
    return read_back(config, "read_ticks.sql", s.TICK_SCHEMA, symbols, from_, to, client=client)
