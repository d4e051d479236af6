"""The live state of a source's feed (up or down, since when, reconnects) and its message accounting, shared
with the metrics and health endpoints, which read it from their own thread."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from datetime import datetime

from ..contract import columns as c
from ..contract import schema
from ..contract.feed import SourceChunk

# Reasons and message types become metric labels: past this many distinct values per source they count as
# "other", so a feed sending garbage cannot blow up the metrics.
MAX_LABELS = 32
OTHER = "other"


class FeedStatus:
    """Up/down state, connection counts and the running totals of received, accepted, quarantined (by reason),
    duplicate and ignored (by type) messages of one source; times are monotonic seconds."""

    def __init__(self, source: str, *, up: bool = False, monotonic: Callable[[], float] = time.monotonic):
        self.source = source
        self._lock = threading.Lock()
        self._monotonic = monotonic
        self.up = up
        self.changed_at = monotonic()
        self.reason = "" if up else "not connected yet"
        self.connects = 0  # successful connections
        self.reconnects = 0  # successful connections after the first
        self.failures = 0  # connection attempts that failed
        self.received = self.accepted = self.duplicates = 0
        self.quarantined: Counter[str] = Counter()
        self.ignored: Counter[str] = Counter()
        self.last_trade: datetime | None = None  # newest event time accepted

    def connected(self) -> None:
        """A connection was opened: the feed is up; every connection after the first is a reconnect."""
        with self._lock:
            self.connects += 1
            self.reconnects += self.connects > 1
            self.up, self.reason, self.changed_at = True, "", self._monotonic()

    def lost(self, reason: str, since: float | None = None, *, failed: bool = False) -> None:
        """The feed is down for `reason` since `since` (monotonic, default now); `failed`: a connect attempt failed."""
        with self._lock:
            self.failures += failed
            self.reason = reason  # the latest cause; the outage still dates from when it began
            if self.up:
                self.up, self.changed_at = False, self._monotonic() if since is None else since

    def down_for(self) -> float:
        """Seconds the feed has been down (0 while up)."""
        with self._lock:
            return 0.0 if self.up else max(0.0, self._monotonic() - self.changed_at)

    def record(self, chunk: SourceChunk) -> None:
        """Add a chunk's accounting to the totals."""
        with self._lock:
            self.received += chunk.received
            self.accepted += chunk.rows
            self.duplicates += chunk.duplicates
            _add(self.ignored, chunk.ignored.items())
            if chunk.quarantine is not None and chunk.quarantine.height:
                counts = chunk.quarantine.get_column(c.Q_REASON).fill_null("").value_counts()
                _add(self.quarantined, counts.iter_rows())
            if chunk.ticks is not None and chunk.ticks.height:
                newest = schema.newest(chunk.ticks.get_column(c.TIMESTAMP))
                if newest is not None and (self.last_trade is None or newest > self.last_trade):
                    self.last_trade = newest

    def snapshot(self) -> dict:
        """The state as plain values (for health bodies and summaries)."""
        with self._lock:
            return {
                "source": self.source, "up": self.up, "reason": self.reason, "connects": self.connects,
                "reconnects": self.reconnects, "failures": self.failures, "received": self.received,
                "accepted": self.accepted, "duplicates": self.duplicates, "quarantined": dict(self.quarantined),
                "ignored": dict(self.ignored), "last_trade": self.last_trade,
                "down_s": 0.0 if self.up else round(max(0.0, self._monotonic() - self.changed_at), 3),
            }


def _add(counter: Counter, items) -> None:
    """Add (label, count) pairs, folding labels past MAX_LABELS into OTHER."""
    for label, count in items:
        key = label if label in counter or len(counter) < MAX_LABELS else OTHER
        counter[key] += count


async def tally(chunks: AsyncIterator[SourceChunk], status: FeedStatus) -> AsyncIterator[SourceChunk]:
    """`chunks`, each recorded in `status` as it passes."""
    async with aclosing(chunks) as inner:  # type: ignore[type-var]  # an async generator has aclose
        async for chunk in inner:
            status.record(chunk)
            yield chunk
