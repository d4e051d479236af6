"""A bounded, ordered on-disk spool of Arrow batches that a sink could not deliver, drained with backoff."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

from ..contract.errors import SinkError, SinkUnavailable, SpoolFull

if TYPE_CHECKING:  # pyarrow (~0.1 s to import) is loaded only when a batch is spooled
    import pyarrow as pa

_NAME = re.compile(r"^(\d{12})\.([a-z_]+)\.arrow$")


@dataclass
class Entry:
    """One spooled batch: its order, kind (table), file, size and delivery notes (e.g. stream and offset)."""

    seq: int
    kind: str
    path: Path
    size: int
    meta: dict = field(default_factory=dict)


class Spool:
    """Arrow IPC files in `folder`, delivered oldest first; at most `max_bytes` on disk; survives a restart."""

    def __init__(self, folder: Path, max_bytes: int):
        self.folder, self.max_bytes = Path(folder), max_bytes
        self.folder.mkdir(parents=True, exist_ok=True)
        self._entries: list[Entry] = []
        for path in sorted(self.folder.iterdir()):
            if path.name.endswith(".tmp"):
                path.unlink()  # a write cut short by a crash; its batch was never acknowledged as spooled
                continue
            match = _NAME.match(path.name)
            if match:
                meta_path = path.with_suffix(".json")
                meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
                self._entries.append(Entry(int(match[1]), match[2], path, path.stat().st_size, meta))
        self._next = self._entries[-1].seq + 1 if self._entries else 0

    def __len__(self) -> int:
        """Number of spooled batches."""
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """Bytes on disk."""
        return sum(e.size for e in self._entries)

    @property
    def rows(self) -> int:
        """Rows waiting (memory-mapped, nothing copied)."""
        return sum(self.read(e).num_rows for e in self._entries)

    def head(self) -> Entry | None:
        """The oldest batch, or None."""
        return self._entries[0] if self._entries else None

    def fits(self, size: int) -> bool:
        """Whether `size` more bytes stay under the cap (an empty spool always takes one batch)."""
        return not self._entries or self.bytes + size <= self.max_bytes

    def push(self, kind: str, table: pa.Table, meta: dict | None = None) -> Entry:
        """Append `table` as the newest batch; SpoolFull when the byte cap would be exceeded."""
        import pyarrow as pa
        import pyarrow.ipc as ipc

        sink = pa.BufferOutputStream()
        with ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        data = sink.getvalue()
        if not self.fits(data.size):
            raise SpoolFull(f"spool {self.folder} holds {self.bytes} bytes; {data.size} more exceed its cap "
                            f"of {self.max_bytes} bytes")
        entry = Entry(self._next, kind, self.folder / f"{self._next:012d}.{kind}.arrow", data.size, dict(meta or {}))
        try:
            if entry.meta:
                _atomic_write(entry.path.with_suffix(".json"), json.dumps(entry.meta).encode())
            _atomic_write(entry.path, data.to_pybytes())
        except OSError as exc:
            entry.path.with_suffix(".json").unlink(missing_ok=True)
            from .failures import describe

            raise SinkError(describe(exc, f"spooling a batch to {self.folder}")) from exc
        self._next += 1
        self._entries.append(entry)
        return entry

    def read(self, entry: Entry) -> pa.Table:
        """The batch of `entry`."""
        import pyarrow as pa
        import pyarrow.ipc as ipc

        with pa.memory_map(str(entry.path)) as source:
            return ipc.open_file(source).read_all()

    def annotate(self, entry: Entry, meta: dict) -> None:
        """Replace the delivery notes of `entry` (durably)."""
        entry.meta = dict(meta)
        _atomic_write(entry.path.with_suffix(".json"), json.dumps(entry.meta).encode())

    def pop(self, entry: Entry) -> None:
        """Remove `entry` (the head) once delivered."""
        if not self._entries or self._entries[0] is not entry:
            raise SinkError(f"spool {self.folder}: only the oldest batch can be removed")
        self._entries.pop(0)
        entry.path.unlink(missing_ok=True)
        entry.path.with_suffix(".json").unlink(missing_ok=True)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temporary file, fsync and rename, so a crash leaves old or new, never half."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk leaves nothing half-written behind
        raise


# send(kind, table, meta): deliver or raise SinkUnavailable; it may write delivery notes into meta.
Send = Callable[[str, "pa.Table", dict], None]


class Backoff:
    """Next-attempt schedule: delay = min(cap, base * 2**failures), at least the server's retry-after."""

    def __init__(self, base: float = 0.5, cap: float = 30.0, monotonic: Callable[[], float] = time.monotonic):
        self.base, self.cap, self.monotonic = base, cap, monotonic
        self.failures, self.not_before = 0, 0.0
        self.last_retry_after: float | None = None

    def due(self) -> bool:
        """Whether an attempt may be made now."""
        return self.monotonic() >= self.not_before

    def failed(self, retry_after: float | None) -> float:
        """Record a failure; the delay (seconds) until the next attempt."""
        delay = max(min(self.cap, self.base * 2 ** self.failures), retry_after or 0.0)
        self.failures += 1
        self.last_retry_after = retry_after
        self.not_before = self.monotonic() + delay
        return delay

    def succeeded(self) -> None:
        """Reset after a delivery."""
        self.failures, self.not_before = 0, 0.0


class SpooledDelivery:
    """Delivers batches in order through `send`; while it fails they wait in the spool and are retried later."""

    def __init__(self, spool: Spool, send: Send, backoff: Backoff | None = None, block_seconds: float = 60.0):
        self.spool, self.send = spool, send
        self.backoff = backoff or Backoff()
        self.block_seconds = block_seconds
        self.spooled_batches = 0  # batches that had to wait, for metrics

    def deliver(self, kind: str, table: pa.Table) -> bool:
        """Send `table` now if nothing waits before it, else spool it; True when it was delivered now."""
        if len(self.spool) == 0 and self.backoff.due():
            meta: dict = {}
            try:
                self.send(kind, table, meta)
            except SinkUnavailable as error:
                self.backoff.failed(error.retry_after)
                self._push(kind, table, meta)
                return False
            self.backoff.succeeded()
            return True
        self._push(kind, table, {})
        self.drain()
        return False

    def drain(self) -> int:
        """Deliver spooled batches oldest first while the sink answers and the backoff allows; how many."""
        delivered = 0
        while (entry := self.spool.head()) is not None and self.backoff.due():
            meta = dict(entry.meta)
            try:
                self.send(entry.kind, self.spool.read(entry), meta)
            except SinkUnavailable as error:
                if meta != entry.meta:
                    self.spool.annotate(entry, meta)
                self.backoff.failed(error.retry_after)
                break
            self.spool.pop(entry)
            self.backoff.succeeded()
            delivered += 1
        return delivered

    def drain_all(self, timeout: float) -> None:
        """Block until the spool is empty, retrying with backoff; SinkUnavailable after `timeout` seconds."""
        self._wait_until(lambda: len(self.spool) == 0, timeout, "drain the spool")

    def _push(self, kind: str, table: pa.Table, meta: dict) -> None:
        """Spool `table`; when full, wait (memory stays bounded) for the sink to take older batches first."""
        size = table.nbytes
        if not self.spool.fits(size):
            try:
                self._wait_until(lambda: self.spool.fits(size), self.block_seconds, "make room in the spool")
            except SinkUnavailable as error:
                raise SpoolFull(f"{error}; spool {self.spool.folder} is full ({self.spool.bytes} bytes)") from error
        self.spool.push(kind, table, meta)
        self.spooled_batches += 1

    def _wait_until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        """Drain with exponential backoff (respecting retry-after) until done(); SinkUnavailable on timeout."""

        def attempt() -> None:
            self.backoff.not_before = 0.0  # tenacity owns the waiting here
            self.drain()
            if not done():
                raise SinkUnavailable(f"could not {what} within {timeout:.0f}s",
                                      retry_after=self.backoff.last_retry_after)

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            return max(wait_exponential(multiplier=self.backoff.base, max=self.backoff.cap)(state),
                       getattr(error, "retry_after", None) or 0.0)

        retrying = Retrying(retry=retry_if_exception_type(SinkUnavailable), stop=stop_after_delay(timeout),
                            wait=wait, reraise=True)
        retrying(attempt)
