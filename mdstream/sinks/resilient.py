"""The sink a stream writes through: `flush` never raises for a cause waiting can cure (the file locked by a
reader, a full disk, the network down). Rows stay buffered, in memory and past `max_rows` in an on-disk spool,
and the write is retried with exponential backoff; a restart sends what a previous run spooled first. With
`background`, writes run on a thread, so a slow or unreachable sink (BigQuery set-up) never stalls the stream."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import polars as pl

from ..contract import schema
from ..contract.errors import SinkError, SinkUnavailable
from . import base
from .failures import LOCK_HELD, cause
from .spool import Backoff, Spool

log = logging.getLogger("mdstream.sink")
SPOOL_MAX_BYTES = 2 * 1024**3


class ResilientSink:
    """Wraps the sink `opener` builds (opened on first use, retried while unavailable); read-back methods and
    `summary`/`state` of the inner sink are passed through."""

    def __init__(self, opener: Callable[[], base.Sink], spool_dir: Path, *, max_rows: int = 1_000_000,
                 background: bool = False, close_timeout: float = 10.0, backoff: Backoff | None = None):
        self._opener, self.spool_dir = opener, Path(spool_dir)
        self.max_rows, self.background, self.close_timeout = max_rows, background, close_timeout
        self.backoff = backoff or Backoff(base=0.25, cap=10.0)
        self._inner: base.Sink | None = None
        self._buffer = base.KindBuffer()
        self._lock = threading.Lock()
        self._spool: Spool | None = Spool(self.spool_dir, SPOOL_MAX_BYTES) if self.spool_dir.is_dir() else None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sink-write") if background else None
        self._running: Future | None = None
        self.waiting: str | None = None  # why rows are waiting, while they are
        self.waiting_cause: str | None = None  # its root cause (failures.cause)
        self.waiting_since: float | None = None
        self.retries = 0
        try:
            self._open()  # a wrong setting fails now, not at the first flush
        except SinkUnavailable as error:
            self.waiting, self.waiting_since, self.waiting_cause = str(error), time.monotonic(), cause(error)
            log.warning("%s; the stream starts anyway and keeps its rows until the sink answers", error)

    # -- Sink -----------------------------------------------------------------------------------------------
    def write(self, kind: str, frame: pl.DataFrame) -> None:
        """Buffer `frame` of `kind` until a flush gets it into the sink."""
        with self._lock:
            self._buffer.add(kind, frame)

    def flush(self) -> None:
        """Try to write everything buffered (spooled rows first) if the backoff allows; a transient failure
        keeps the rows and schedules a retry; a permanent one raises SinkError."""
        if self._pool is None:
            self._attempt()
            return
        if self._running is not None:
            if not self._running.done() and self._buffered() <= 2 * self.max_rows:
                return  # the previous write is still under way; these rows go with the next one
            self._running.result()  # a permanent failure surfaces here (and memory stays bounded)
        self._running = self._pool.submit(self._attempt)

    def close(self) -> None:
        """Write what is left, retrying for up to `close_timeout` seconds; what still cannot be written is kept
        in the spool (sent first by the next run), and the inner sink is closed."""
        if self._running is not None:
            self._running.result()
        # A file held by a reader is retried for a while (readers let go); a full disk or a remote sink that is
        # down keeps its rows on disk at once (its next attempt could cost a whole set-up deadline).
        patient = not self.waiting or (self.waiting_cause == LOCK_HELD and not self.background)
        deadline = time.monotonic() + (self.close_timeout if patient else 0.0)
        while self.pending_rows() and time.monotonic() < deadline:
            self.backoff.not_before = min(self.backoff.not_before, time.monotonic())
            self._attempt()
            if self.pending_rows():
                time.sleep(min(0.25 * (1 + self.retries), max(0.0, deadline - time.monotonic())))
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self._buffer.pending():
            self._spill()
        if self._spool is not None and len(self._spool):
            log.warning("%s; %s rows kept in %s, written first by the next run", self.waiting or "sink unavailable",
                        f"{self._spool.rows:,}", self.spool_dir)
        if self._inner is not None:
            try:
                self._inner.close()
            except SinkUnavailable as error:
                log.warning("%s", error)

    # -- pass-through -----------------------------------------------------------------------------------------
    def __getattr__(self, name: str):
        """Read-back and reporting methods of the inner sink (opened for them if needed)."""
        if name.startswith("_"):
            raise AttributeError(name)
        inner = self._open(wait=self.close_timeout)
        return getattr(inner, name)

    def summary(self) -> str:
        """The inner sink's line, plus what waits and why."""
        line = self._inner.summary() if self._inner is not None and hasattr(self._inner, "summary") else "sink not open yet"
        if self.waiting:
            line += f"; waiting {time.monotonic() - (self.waiting_since or time.monotonic()):.0f}s ({self.waiting}), " \
                    f"{self.pending_rows():,} rows kept, retry {self.retries}"
        return line

    def pending_rows(self) -> int:
        """Rows not yet in the sink (buffered and spooled)."""
        return self._buffered() + (self._spool.rows if self._spool is not None else 0)

    def _buffered(self) -> int:
        """Rows buffered in memory."""
        with self._lock:
            return sum(frame.height for frames in self._buffer.frames.values() for frame in frames)

    # -- internals ---------------------------------------------------------------------------------------------
    def _open(self, wait: float = 0.0) -> base.Sink:
        """The inner sink, opened now if needed (retrying for up to `wait` seconds while a reader holds it)."""
        deadline = time.monotonic() + wait
        while self._inner is None:
            try:
                self._inner = self._opener()
            except SinkUnavailable as error:
                if time.monotonic() >= deadline or cause(error) != LOCK_HELD:
                    raise
                time.sleep(0.2)
        return self._inner

    def _attempt(self) -> None:
        """One write attempt when the backoff allows: spooled batches oldest first, then the buffer."""
        if not self.backoff.due():
            self._bound()
            return
        with self._lock:
            batches = self._buffer.pending()
            self._buffer.clear()
        try:
            inner = self._open()
            self._drain_spool(inner)
            if batches:
                for kind, frame in batches.items():
                    inner.write(kind, frame)
                inner.flush()
        except SinkUnavailable as error:
            self._failed(error, batches)
            return
        except BaseException:
            self._keep(batches)
            raise
        if self.waiting and self.waiting_since is not None:
            log.warning("sink writes again after %.1fs and %d retries", time.monotonic() - self.waiting_since, self.retries)
        self.waiting, self.waiting_since, self.waiting_cause, self.retries = None, None, None, 0
        self.backoff.succeeded()

    def _failed(self, error: SinkUnavailable, batches: dict[str, pl.DataFrame]) -> None:
        """Keep the rows of a failed attempt and schedule the next one."""
        discard = getattr(self._inner, "discard", None)
        if discard is not None:
            discard()  # the rows are ours again; the sink must not send them a second time
        self._keep(batches)
        delay = self.backoff.failed(error.retry_after)
        if self.waiting is None:
            self.waiting_since = time.monotonic()
            log.warning("%s; keeping %s rows and retrying (next in %.1fs)", error, f"{self.pending_rows():,}", delay)
        self.waiting, self.waiting_cause = str(error), cause(error)
        self.retries += 1
        self._bound()

    def _keep(self, batches: dict[str, pl.DataFrame]) -> None:
        """Put `batches` back in front of what was buffered since."""
        with self._lock:
            for kind, frame in batches.items():
                self._buffer.frames[kind].insert(0, frame)

    def _bound(self) -> None:
        """Past `max_rows` buffered in memory, move them to the on-disk spool."""
        if self._buffered() > self.max_rows:
            self._spill()

    def _spill(self) -> None:
        """Move everything buffered to the spool; SinkError (rows named) when even that fails."""
        with self._lock:
            batches = self._buffer.pending()
            self._buffer.clear()
        if not batches:
            return
        try:
            if self._spool is None:
                self._spool = Spool(self.spool_dir, SPOOL_MAX_BYTES)
            for kind, frame in batches.items():
                self._spool.push(kind, frame.to_arrow())
        except (OSError, SinkError) as error:
            self._keep(batches)
            rows = sum(frame.height for frame in batches.values())
            from .failures import describe

            raise SinkError(f"{self.waiting or 'sink unavailable'}; and {rows:,} waiting rows could not be kept: "
                            f"{describe(error, f'spooling to {self.spool_dir}')}") from error

    def _drain_spool(self, inner: base.Sink) -> None:
        """Send spooled batches to `inner`, oldest first, each removed once the sink has it."""
        while self._spool is not None and (entry := self._spool.head()) is not None:
            inner.write(entry.kind, schema.from_arrow(self._spool.read(entry)))
            inner.flush()
            self._spool.pop(entry)
