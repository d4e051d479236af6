"""`mdstream verify` against BigQuery: read raw ticks and candles back, recompute locally in DuckDB, diff."""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

import duckdb
import polars as pl

from .. import schema as s
from ..verify import COMPARED, WINDOW_KEY, VerifyReport, build_report, recompute
from .config import BigQueryConfig, rest_client
from .views import read_candles, render, run
from .writer import translate


def read_ticks(config: BigQueryConfig, symbols: Sequence[str], from_: datetime, to: datetime, *, client=None) -> pl.DataFrame:
    """Raw ticks of `symbols` with timestamp in [from_, to), conformed to TICK_SCHEMA."""
    from google.cloud import bigquery

    client = client or rest_client(config)
    params = [bigquery.ArrayQueryParameter("symbols", "STRING", list(symbols)),
              bigquery.ScalarQueryParameter("from_ts", "TIMESTAMP", from_),
              bigquery.ScalarQueryParameter("to_ts", "TIMESTAMP", to)]
    job = run(client, render("read_ticks.sql", config), config, params, what="reading ticks back")
    try:
        frame = pl.from_arrow(job.to_arrow(create_bqstorage_client=False))
    except Exception as error:  # noqa: BLE001 (the client raises many types; translate names them)
        raise translate(error, "reading ticks back") from error
    if not isinstance(frame, pl.DataFrame) or frame.width == 0:
        return s.empty(s.TICK_SCHEMA)
    return s.conform(frame, s.TICK_SCHEMA)


def verify_bigquery(config: BigQueryConfig, *, symbols: Sequence[str], from_: datetime, to: datetime,
                    rel_tol: float = 1e-9) -> VerifyReport:
    """Recompute candles of [from_, to) from the ticks stored in BigQuery with the DuckDB SQL and diff them
    against BigQuery's candles_latest."""
    client = rest_client(config)
    ticks = read_ticks(config, symbols, from_, to, client=client)
    stored = read_candles(config, list(symbols), from_, to, client=client).select(*WINDOW_KEY, *COMPARED)
    con = duckdb.connect()
    try:
        # The recomputation breaks full ties by arrival order (rowid), so the ticks go into a real table.
        con.register("_read_back", ticks.to_arrow())
        con.execute("SET TimeZone = 'UTC'; CREATE TABLE ticks AS SELECT * FROM _read_back")
        expected = recompute(con, symbols=list(symbols), start=from_, end=to)
    finally:
        con.close()
    return build_report(expected, stored, rel_tol=rel_tol)
