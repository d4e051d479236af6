"""Read-only access to a DuckDB file that a stream may be writing: short-lived connections, no file access."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl

from ..contract import schema
from ..contract.errors import InputError, MdstreamError

# A stream holds its file for the few ms of a flush; a backfill holds it for its whole run.
LOCK_WAIT_S = 2.0
RETRY_S = 0.02
# Read-only, and no file system or network access from SQL (no COPY, read_csv, ATTACH, httpfs); DuckDB refuses to
# switch external access back on while the database is open.
READ_CONFIG: dict[str, str | bool] = {"access_mode": "READ_ONLY", "enable_external_access": False}
SESSION = ("SET TimeZone = 'UTC'",)


class DatabaseBusy(MdstreamError):
    """Another process (a backfill, a long query) held the DuckDB file's lock for longer than the wait."""

    def __init__(self, path: str, waited_s: float):
        self.path, self.waited_s = path, waited_s
        super().__init__(f"{path}: another process has held the file's lock for {waited_s:.1f} s; try again")


def _is_lock_error(exc: duckdb.Error) -> bool:
    """True for DuckDB's 'Could not set lock on file' (another process holds the file)."""
    return "lock" in str(exc).lower()


def open_readonly(path: str | Path, *, wait_s: float = LOCK_WAIT_S) -> duckdb.DuckDBPyConnection:
    """A read-only connection to `path` (UTC session, external access off), retrying every 20 ms for up to `wait_s`
    seconds while a writer holds the lock; DatabaseBusy after that, InputError when the file is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise InputError("DuckDB file not found (run a backfill or stream first, or pass --duckdb)", path=str(path))
    deadline = time.monotonic() + wait_s
    while True:
        try:
            con = duckdb.connect(str(path), read_only=True, config=dict(READ_CONFIG))
        except duckdb.Error as exc:
            if not _is_lock_error(exc):
                raise InputError(f"cannot open DuckDB file read-only: {exc}", path=str(path)) from exc
            if time.monotonic() >= deadline:
                raise DatabaseBusy(str(path), wait_s) from exc
            time.sleep(RETRY_S)
            continue
        for statement in SESSION:
            con.execute(statement)
        return con


@contextmanager
def reading(path: str | Path, *, wait_s: float = LOCK_WAIT_S) -> Iterator[duckdb.DuckDBPyConnection]:
    """open_readonly() for one `with` block; the file is released (and the writer unblocked) as it ends."""
    con = open_readonly(path, wait_s=wait_s)
    try:
        yield con
    finally:
        con.close()


def frame(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pl.DataFrame:
    """Result of `sql` with bound `params` as a Polars frame; a missing view names what to do."""
    try:
        return schema.from_stream(con.sql(sql, params=params or None))
    except duckdb.CatalogException as exc:
        raise InputError(f"not an mdstream database ({exc}); write candles with mdstream first") from exc
    except duckdb.Error as exc:
        raise InputError(f"query failed: {exc}") from exc
