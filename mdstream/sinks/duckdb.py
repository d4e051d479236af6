"""DuckDB sink: the embedded default store of candles, ticks and quarantined rows.

Frames go in as Arrow (registered with DuckDB, never converted row by row). Candles are idempotent by
their key (exchange, symbol, timeframe, timestamp_in, revision) through delete-then-insert inside one
transaction: measured faster than INSERT OR REPLACE on a primary key (about 35 ms against 62 ms per
10k-row batch into a 1M-row table) and it keeps the table free of indexes, so additive ALTER TABLE
migrations and same-transaction delete + insert of one key always work.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from ..contract import schema
from ..contract.errors import SinkError
from ..contract.timeframes import day_bounds
from . import base
from .duckdb_schema import (
    LOCK_WAIT_S,
    STREAM_LOCK_WAIT_S,
    connect_waiting,
    ensure_schema,
    failure,
)
from .duckdb_schema import quietly as _quietly
from .duckdb_writes import delete_day, insert, prepare, upsert, warm_query


class DuckDBSink:
    """Sink into one DuckDB file: tables candles, ticks, quarantine and the views of views.sql."""

    capabilities = frozenset({base.WRITE_DAY, base.WRITE_DAYS, base.READ_BACK})

    def __init__(self, path: str | Path = "./mdstream.duckdb", *, shared: bool = False, background: bool = False,
                 remove_unused: bool = False):
        """Open (creating or migrating) the database at `path`. `shared` holds the file only while writing,
        so `mdstream query` and other readers can open it between flushes of a long-running stream.
        `background` opens it on a thread while the caller goes on (a backfill reads its first input
        meanwhile); the first operation waits for it and raises the open's SinkError, if any. `remove_unused`
        deletes the file at close if this sink created it and wrote nothing (a command that failed)."""
        self.path = Path(path)
        self.shared = shared
        self.con: duckdb.DuckDBPyConnection | None = None
        self.migrated: list[str] = []
        self._buffer = base.KindBuffer()
        self.rows_written: dict[str, int] = {kind: 0 for kind in base.KINDS}
        self._opening: Future | None = None
        new_file = not self.path.exists()
        # A file this sink creates is removed again if nothing was ever written to it (a failed command).
        self._created = remove_unused and new_file
        # A file this sink creates and holds alone has nothing to read back or replace until it writes.
        self._untouched = not shared and new_file
        if background:
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="duckdb-open")
            self._opening = pool.submit(self._open)
            pool.shutdown(wait=False)
        else:
            self._open()

    def _open(self) -> None:
        """Connect and create or migrate the schema; a shared sink lets go of the file afterwards."""
        try:
            con = connect_waiting(self.path, wait_s=STREAM_LOCK_WAIT_S if self.shared else LOCK_WAIT_S)
            self.migrated = ensure_schema(con)
        except (duckdb.Error, OSError) as exc:
            raise failure(exc, self.path, "open of") from exc
        if self.shared:
            con.close()
        else:
            self.con = con

    def _ready(self) -> None:
        """Wait for a background open; raises its SinkError (again on every call if it failed)."""
        if self._opening is not None:
            self._opening.result()
            self._opening = None

    def write(self, kind: str, frame: pl.DataFrame) -> None:
        """Buffer `frame` of `kind`; nothing is visible until flush()."""
        self._buffer.add(kind, frame)

    @property
    def db(self) -> duckdb.DuckDBPyConnection:
        """The open connection (only inside a session)."""
        assert self.con is not None, "the DuckDB connection is used outside a session"
        return self.con

    @contextmanager
    def _session(self):
        """The connection for one operation: the open one, or (shared) one opened now and closed after."""
        self._ready()
        if not self.shared:
            yield
            return
        try:
            self.con = connect_waiting(self.path, wait_s=STREAM_LOCK_WAIT_S)
        except (duckdb.Error, OSError) as exc:
            raise failure(exc, self.path, "open of") from exc
        try:
            yield
        finally:
            self.con.close()
            self.con = None

    def discard(self) -> None:
        """Forget what is buffered (its owner keeps it elsewhere)."""
        self._buffer.clear()

    def flush(self) -> None:
        """Upsert everything buffered in one transaction; on failure nothing is applied and the buffer is kept."""
        batches = self._buffer.pending()
        if not batches:
            return
        prepared = {kind: prepare(kind, frame) for kind, frame in batches.items()}
        with self._session():
            def upsert_all() -> None:
                """Every buffered kind, in one transaction."""
                for kind, frame in prepared.items():
                    self._upsert(kind, frame)

            self._transaction(upsert_all)
        self._untouched = False
        for kind, frame in prepared.items():
            self.rows_written[kind] += frame.height
        self._buffer.clear()

    def write_day(self, exchange: str, symbol: str, day: str, frames: dict[str, pl.DataFrame]) -> None:
        """Replace every row of (exchange, symbol, UTC day) with `frames`, all or nothing."""
        self.write_days([(exchange, symbol, day, frames)])

    def write_days(self, days: Sequence[base.Day]) -> None:
        """Replace every row of each (exchange, symbol, UTC day) with its frames, all in one transaction."""
        prepared = [(exchange, symbol, day, {kind: prepare(kind, frame) for kind, frame in frames.items()})
                    for exchange, symbol, day, frames in days]
        # Each kind goes in with one insert: DuckDB's per-statement cost exceeds a small day's rows.
        kinds = {kind: pl.concat(parts) for kind in base.KINDS
                 if (parts := [f[kind] for *_, f in prepared if kind in f and f[kind].height])}

        def replace() -> None:
            """Delete the days' rows then insert the new frames (inside the caller's transaction)."""
            if not self._untouched:
                for exchange, symbol, day, frames in prepared:
                    self._delete_day(exchange, symbol, day, *day_bounds(day), frames.get(base.QUARANTINE))
            for kind, frame in kinds.items():
                self._insert(kind, frame)

        with self._session():
            # A day is written once and read for long: it goes straight into the file at commit, skipping
            # the write-ahead log and the later checkpoint that would copy it again.
            try:
                self.db.execute("SET checkpoint_threshold = '0b'")
                self._transaction(replace)
                self._untouched = False
            except duckdb.Error as exc:
                what = " ".join(prepared[0][:3]) + (f" and {len(prepared) - 1} more day(s)" if len(prepared) > 1 else "")
                raise failure(exc, self.path, f"write of {what} to") from exc
            finally:
                _quietly(self.con, "RESET checkpoint_threshold")
        for kind, frame in kinds.items():
            self.rows_written[kind] += frame.height

    def read_candles(self, *, exchange: str, symbols=None, timeframes=(), rows: int = base.WARM_ROWS,
                     before: datetime | None = None) -> pl.DataFrame:
        """CandleReader: per series the newest `rows` windows and every window since the UTC midnight of its
        newest one (latest revisions), of windows starting before `before` when given."""
        sql, probe, params = warm_query(exchange, symbols, timeframes, rows, before)
        with self._session():
            # A first run finds nothing: a one-row probe is much cheaper than planning the view query.
            # fetchall: a half-read result would keep the connection busy for the query below.
            if self._untouched or not self.db.execute(probe, params).fetchall():
                return schema.empty(schema.CANDLE_SCHEMA)
            frame = schema.from_stream(self.db.sql(sql, params=params))
        return schema.conform(frame, schema.CANDLE_SCHEMA)

    def close(self) -> None:
        """Flush and close the connection; a file this sink created and never wrote to is removed."""
        try:
            self.flush()
            self._ready()
        finally:
            if self._opening is not None:  # the flush failed before the background open was waited for
                try:
                    self._opening.result()
                except SinkError:
                    pass
                self._opening = None
            if self.con is not None:
                self.con.close()
                self.con = None
            self._remove_if_unused()

    def _remove_if_unused(self) -> None:
        """Delete the file (and its write-ahead log) when this sink created it and wrote nothing."""
        if self._created and not any(self.rows_written.values()):
            for path in (self.path, self.path.with_name(self.path.name + ".wal")):
                try:
                    path.unlink(missing_ok=True)
                except OSError:
                    pass  # e.g. a read-only file system: nothing was created there either

    def summary(self) -> str:
        """One line: rows written per kind and the file."""
        counts = ", ".join(f"{n:,} {kind}" for kind, n in self.rows_written.items() if n)
        return f"DuckDB {self.path}: {counts or 'nothing'} written"

    def _transaction(self, body) -> None:
        """Run `body` inside BEGIN/COMMIT; roll back and raise SinkError (naming the root cause) on any failure;
        an interrupt inside DuckDB stays an interrupt, not a database error."""
        try:
            self.db.execute("BEGIN TRANSACTION")
            body()
            self.db.execute("COMMIT")
        except BaseException as exc:
            _quietly(self.con, "ROLLBACK")
            if isinstance(exc, duckdb.InterruptException):
                raise KeyboardInterrupt from exc
            if isinstance(exc, (duckdb.Error, OSError)):
                raise failure(exc, self.path, "write (nothing applied) to") from exc
            raise

    def _insert(self, kind: str, frame: pl.DataFrame) -> None:
        """Plain insert of an already prepared frame."""
        insert(self.db, kind, frame)

    def _upsert(self, kind: str, frame: pl.DataFrame) -> None:
        """Idempotent insert: candles replace their key, ticks and quarantine rows already stored are skipped."""
        upsert(self.db, kind, frame)

    def _delete_day(self, exchange, symbol, day, start, end, quarantine: pl.DataFrame | None) -> None:
        """Delete the candles (by timestamp_in), ticks (by timestamp) and quarantine rows of one day."""
        delete_day(self.db, exchange, symbol, day, start, end, quarantine)
