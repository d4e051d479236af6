"""The BigQuery sink: exactly-once streaming through committed streams, atomic backfill days through pending ones.

Streaming: each table has one application-created COMMITTED stream; every batch is appended at an explicit
offset, so a retried batch is answered ALREADY_EXISTS instead of being written twice. A batch that cannot be
delivered waits in the on-disk spool with the (stream, offset) it was first tried at; after a restart the
spool is drained first at those offsets and new batches go to a fresh stream, so nothing acknowledged is
re-sent. If the service lost a stream altogether, its spooled batches go to a new stream and candles_latest
still shows one row per key.

Backfill: write_day appends each table's rows to a PENDING stream, finalizes it, deletes what earlier runs
wrote for that (exchange, symbol, day) with DML, then commits the stream with BatchCommitWriteStreams: a
reader sees the old day or the new one, never both. A failure between the DELETE and the commit leaves the
day absent (never doubled) until the day is run again; write_day retries transient failures itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import polars as pl
import pyarrow as pa
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

from ...contract import columns as c
from ...contract import schema
from ...contract.errors import ConfigError, SinkUnavailable
from ...contract.timeframes import day_bounds
from ..base import CANDLES, KINDS, QUARANTINE, READ_BACK, TICKS, WARM_ROWS, WRITE_DAY, KindBuffer
from ..spool import Backoff, Spool, SpooledDelivery
from . import cost
from .config import MAX_RECONNECT_BACKOFF_MS, BigQueryConfig, rest_client, write_client
from .schema import to_arrow
from .setup import initialize
from .views import render, run
from .writer import StreamLost, StreamWriter, translate

_DAY_COLUMN = {CANDLES: c.TIMESTAMP_IN, TICKS: c.TIMESTAMP}
_FAR_FUTURE = datetime(9999, 12, 31, tzinfo=timezone.utc)
log = logging.getLogger("mdstream.sink")


@dataclass
class Stats:
    """Rows and billed bytes written per table, rows the server already had, batches that waited."""

    rows: dict[str, int] = field(default_factory=lambda: {k: 0 for k in KINDS})
    billed_bytes: dict[str, int] = field(default_factory=lambda: {k: 0 for k in KINDS})
    duplicates_skipped: int = 0

    def add(self, kind: str, rows: int, billed: int) -> None:
        """Count `rows` rows of `billed` bytes written to `kind`."""
        self.rows[kind] += rows
        self.billed_bytes[kind] += billed


# Seconds a closing sink keeps trying after failures: just over the write channel's longest reconnect backoff, so
# a server that has just come back is reached, and one still down costs no more.
RECONNECT_S = MAX_RECONNECT_BACKOFF_MS / 1000 + 0.5


class BigQuerySink:
    """Sink and DaySink writing Arrow to BigQuery through the Storage Write API; its candles read back."""

    capabilities = frozenset({WRITE_DAY, READ_BACK})

    def __init__(self, config: BigQueryConfig, *, mode: str = "stream", rest=None, write=None,
                 monotonic: Callable[[], float] = time.monotonic):
        if mode not in ("stream", "backfill"):
            raise ConfigError(f"BigQuery sink mode must be 'stream' or 'backfill', got {mode!r}")
        self.config, self.mode = config, mode
        self.rest = rest if rest is not None else rest_client(config)
        self.writer = StreamWriter(write if write is not None else write_client(config),
                                   config.request_limit_bytes, config.timeout_seconds)
        self.stats = Stats()
        self._buffer = KindBuffer()
        self._streams: dict[str, list] = {}  # kind -> [stream name, next offset]; this process's streams
        self._ready = False
        spool = Spool(config.spool_dir / f"{config.project}.{config.dataset}", config.spool_max_bytes)
        self.delivery = SpooledDelivery(spool, self._send, Backoff(monotonic=monotonic), config.spool_block_seconds)

    # -- Sink ---------------------------------------------------------------------------------------------
    def write(self, kind: str, frame: pl.DataFrame) -> None:
        """Queue `frame` for table `kind`; delivered at the next flush."""
        self._buffer.add(kind, frame)

    def flush(self) -> None:
        """Send every queued batch (or spool it while BigQuery is down) and retry spooled ones when due."""
        # Delivery spools what BigQuery does not take, so the buffer is emptied before sending.
        batches = self._buffer.pending()
        self._buffer.clear()
        for kind, frame in batches.items():
            self.delivery.deliver(kind, to_arrow(kind, frame))
        self.delivery.drain()

    def discard(self) -> None:
        """Forget what is buffered and not yet handed to delivery."""
        self._buffer.clear()

    def close(self) -> None:
        """Flush and wait (bounded by close_seconds) for the spool to drain; whatever still waits is delivered
        on the next start. After failures, one immediate try, then at most RECONNECT_S more (the write channel
        reconnecting to a server that is back); if BigQuery is still down it waits no longer."""
        self.flush()
        spool = self.delivery.spool
        # One immediate try, unless the set-up never succeeded and the last attempt failed (still down).
        if len(spool) and (self._ready or not self.delivery.backoff.failures):
            self.delivery.backoff.not_before = 0.0
            self.delivery.drain()
        if not self.delivery.backoff.failures:
            wait = self.config.close_seconds
        else:
            # A channel in its reconnect backoff fails a call at once, even to a server that is back up.
            wait = min(self.config.close_seconds, RECONNECT_S) if self._ready else 0.0
        if len(spool) and wait:
            try:
                self.delivery.drain_all(wait)
            except SinkUnavailable:
                pass  # kept on disk; the next sink on this spool folder sends it first
        if len(spool):
            log.warning("BigQuery unreachable: %d batches (%s rows) wait in %s; the next run sends them first",
                        len(spool), f"{spool.rows:,}", spool.folder)

    # -- DaySink ------------------------------------------------------------------------------------------
    def write_day(self, exchange: str, symbol: str, day: str, frames: dict[str, pl.DataFrame]) -> None:
        """Replace (exchange, symbol, day) with `frames` per table, atomically per table; retries transient errors."""
        unknown = set(frames) - set(KINDS)
        if unknown:
            raise ConfigError(f"unknown kinds {sorted(unknown)}; expected {', '.join(KINDS)}")
        start, _ = day_bounds(day)
        tables = {kind: to_arrow(kind, frame) for kind, frame in frames.items()}
        retrying = Retrying(retry=retry_if_exception_type(SinkUnavailable), reraise=True,
                            stop=stop_after_delay(self.config.spool_block_seconds),
                            wait=wait_exponential(multiplier=0.5, max=10))
        retrying(self._write_day_once, exchange, symbol, start, tables)

    def _write_day_once(self, exchange: str, symbol: str, start: datetime, tables: dict[str, pa.Table]) -> None:
        """One attempt: pending streams filled and finalized, the old day deleted, then each stream committed."""
        self._ensure()
        pending: dict[str, str] = {}
        for kind, table in tables.items():
            if table.num_rows:
                name = self.writer.create(self.config.table_path(kind), pending=True)
                self.writer.append(name, 0, table)
                self.writer.finalize(name)
                pending[kind] = name
        self._delete_day(exchange, symbol, start, tables)
        for kind, name in pending.items():
            self.writer.commit(self.config.table_path(kind), [name])
            self.stats.add(kind, tables[kind].num_rows, cost.billed_bytes(tables[kind]))

    def _delete_day(self, exchange: str, symbol: str, start: datetime, tables: dict[str, pa.Table]) -> None:
        """DELETE the rows earlier runs wrote for this day (and the quarantine rows of the same sources)."""
        from google.cloud import bigquery

        for kind, column in _DAY_COLUMN.items():
            if kind not in tables:
                continue
            params = [bigquery.ScalarQueryParameter("exchange", "STRING", exchange),
                      bigquery.ScalarQueryParameter("symbol", "STRING", symbol),
                      bigquery.ScalarQueryParameter("day_start", "TIMESTAMP", start),
                      bigquery.ScalarQueryParameter("day_end", "TIMESTAMP", start + timedelta(days=1))]
            run(self.rest, render("replace_day.sql", self.config, table=kind, column=column), self.config, params,
                what=f"replacing {kind} of {exchange} {symbol} {start.date()}")
        quarantine = tables.get(QUARANTINE)
        if quarantine is not None and quarantine.num_rows:
            sources = sorted({s for s in quarantine.column(c.Q_SOURCE).to_pylist() if s is not None})
            sources_param = [bigquery.ArrayQueryParameter("sources", "STRING", sources)]
            run(self.rest, render("replace_quarantine.sql", self.config), self.config, sources_param,
                what="replacing quarantined rows")

    # -- CandleReader -------------------------------------------------------------------------------------
    def read_candles(self, *, exchange: str, symbols=None, timeframes=(), rows: int = WARM_ROWS,
                     before: datetime | None = None) -> pl.DataFrame:
        """CandleReader: per series the newest `rows` windows and every window since the UTC midnight of its
        newest one (candles_latest), of windows starting before `before` when given."""
        from google.cloud import bigquery

        self._ensure()
        params = [bigquery.ScalarQueryParameter("exchange", "STRING", exchange),
                  bigquery.ArrayQueryParameter("timeframes", "STRING", list(timeframes)),
                  bigquery.ArrayQueryParameter("symbols", "STRING", list(symbols or ())),
                  bigquery.ScalarQueryParameter("before", "TIMESTAMP", before or _FAR_FUTURE),
                  bigquery.ScalarQueryParameter("rows", "INT64", int(rows))]
        what = f"reading the stored candles of {exchange} back"
        job = run(self.rest, render("read_warm.sql", self.config), self.config, params, what=what)
        try:
            frame = pl.from_arrow(job.to_arrow(create_bqstorage_client=False))
        except Exception as error:  # noqa: BLE001 (the client raises many types; translate names them)
            raise translate(error, what) from error
        if not isinstance(frame, pl.DataFrame) or frame.width == 0:
            return schema.empty(schema.CANDLE_SCHEMA)
        return schema.conform(frame, schema.CANDLE_SCHEMA)

    # -- delivery -----------------------------------------------------------------------------------------
    def _ensure(self) -> None:
        """Create or migrate the dataset, tables and views once per sink (SinkUnavailable while unreachable)."""
        if self._ready:
            return
        initialize(self.rest, self.config)
        self._ready = True

    def _stream(self, kind: str) -> list:
        """[name, next offset] of this process's committed stream for `kind`, created on first use."""
        if kind not in self._streams:
            self._streams[kind] = [self.writer.create(self.config.table_path(kind), pending=False), 0]
        return self._streams[kind]

    def _send(self, kind: str, table: pa.Table, meta: dict) -> None:
        """Append `table` exactly once: at the (stream, offset) of its first attempt if it had one, else next."""
        self._ensure()
        if "stream" in meta:
            try:
                self._append(kind, table, meta["stream"], int(meta["offset"]))
                return
            except StreamLost:
                if self._streams.get(kind, [None])[0] == meta["stream"]:
                    del self._streams[kind]
                meta.clear()  # the server forgot the stream: the batch goes to a new one
        current = self._stream(kind)
        meta.update(stream=current[0], offset=current[1])
        try:
            self._append(kind, table, current[0], current[1])
        except StreamLost:
            del self._streams[kind]
            current = self._stream(kind)
            meta.update(stream=current[0], offset=current[1])
            self._append(kind, table, current[0], current[1])

    def _append(self, kind: str, table: pa.Table, stream: str, offset: int) -> None:
        """Append at `offset` of `stream`, advance this process's offset if it is ours, count what was new."""
        result = self.writer.append(stream, offset, table)
        current = self._streams.get(kind)
        if current is not None and current[0] == stream:
            current[1] = max(current[1], offset + table.num_rows)
        self.stats.duplicates_skipped += result.duplicates
        if result.rows:
            self.stats.add(kind, result.rows, cost.billed_bytes(table) * result.rows // max(table.num_rows, 1))

    # -- reporting ----------------------------------------------------------------------------------------
    def state(self) -> dict:
        """Streams and next offsets of this process, and what waits in the spool (for metrics and logs)."""
        return {"streams": {k: {"stream": v[0], "offset": v[1]} for k, v in self._streams.items()},
                "spooled_batches": len(self.delivery.spool), "spooled_bytes": self.delivery.spool.bytes}

    def summary(self) -> str:
        """One line: rows written, approximate size and cost (plus what still waits in the spool)."""
        line = cost.summary(sum(self.stats.rows.values()), sum(self.stats.billed_bytes.values()))
        waiting = len(self.delivery.spool)
        return line + (f"; {waiting} batches spooled for the next run" if waiting else "")


def open_sink(config: BigQueryConfig, *, mode: str) -> BigQuerySink:
    """A BigQuerySink for `config` in `mode` ('stream' or 'backfill'); tables are created on first write."""
    return BigQuerySink(config, mode=mode)
