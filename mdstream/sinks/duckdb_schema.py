"""DuckDB connections and schema: contract dtypes as DuckDB types, tables, additive migration, views."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import polars as pl

from ..contract.errors import ConfigError, SinkError
from . import base, failures, sqlfiles

LOCK_WAIT_S = 10.0  # how long a backfill (or a query) waits for another process to release the file
# A stream does not wait long for a reader to let go of the file: its rows stay buffered and it retries later.
STREAM_LOCK_WAIT_S = 0.5
BATCH = "_mdstream_batch"  # the name a frame is registered under for one statement


def duckdb_type(dtype: pl.DataType) -> str:
    """DuckDB column type of a Polars dtype of the data contract (UTC datetimes -> TIMESTAMPTZ)."""
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMPTZ"
    names = {pl.String: "VARCHAR", pl.Float64: "DOUBLE", pl.Int64: "BIGINT", pl.Boolean: "BOOLEAN"}
    for polars_type, sql_type in names.items():
        if dtype == polars_type:
            return sql_type
    raise ConfigError(f"no DuckDB type for {dtype}")


def create_table_sql(table: str, columns: dict[str, pl.DataType]) -> str:
    """CREATE TABLE IF NOT EXISTS statement with the columns of `columns`, in order."""
    body = ", ".join(f'"{name}" {duckdb_type(dtype)}' for name, dtype in columns.items())
    return f"CREATE TABLE IF NOT EXISTS {table} ({body})"


def ensure_schema(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Create missing tables, add missing columns (additive migration), (re)create the views; returns added columns."""
    added: list[str] = []
    con.execute("BEGIN TRANSACTION")  # one commit for every statement below, not one each
    for table, columns in base.SCHEMAS.items():
        con.execute(create_table_sql(table, columns))
        present = {row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()}
        for name, dtype in columns.items():
            if name not in present:
                con.execute(f'ALTER TABLE {table} ADD COLUMN "{name}" {duckdb_type(dtype)}')
                added.append(f"{table}.{name}")
    # Views bind `SELECT *` at creation, so they are recreated after every migration.
    con.execute(sqlfiles.read("duckdb/views.sql"))
    con.execute("COMMIT")
    return added


def connect(path: str | Path, *, read_only: bool = False, config: dict | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection whose session time zone is UTC (so ::DATE and date_trunc mean UTC days); `config`
    holds settings fixed at open (e.g. no external access)."""
    con = duckdb.connect(str(path), read_only=read_only, config=config or {})
    con.execute("SET TimeZone = 'UTC'")
    return con


def connect_waiting(path: str | Path, *, read_only: bool = False, wait_s: float = LOCK_WAIT_S,
                    config: dict | None = None) -> duckdb.DuckDBPyConnection:
    """connect(), waiting up to `wait_s` seconds while another process holds the file's lock: a stream
    holds it only for the few ms of a flush, a query only while it runs."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return connect(path, read_only=read_only, config=config)
        except duckdb.Error as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def failure(exc: BaseException, path: Path, what: str) -> SinkError:
    """A DuckDB or OS error as one line naming the file and the root cause (see failures.sink_error)."""
    return failures.sink_error(exc, f"DuckDB {what} {path}")


def quietly_unregister(con) -> None:
    """Drop the registered batch; inside an aborted transaction that fails too, and must not hide why."""
    try:
        con.unregister(BATCH)
    except duckdb.Error:
        pass


def quietly(con, sql: str) -> None:
    """Run a clean-up statement whose own failure must not hide the error being handled."""
    try:
        con.execute(sql)
    except duckdb.Error:
        pass
