"""Healing feed gaps from a venue's REST history while the stream runs.

A trade-id jump on a venue with consecutive ids (Binance) names exactly what was missed: the ids between the last
trade before an outage and the first after it. For each one the healer fetches those trades (off the event loop's
critical path, a few at a time), hands them to the engine as late trades and, when the fill is proven complete
(every id there), heals the jump and the outage of that symbol it lies in: the windows are emitted again, equal to
an uninterrupted feed, without `gap = feed`. A partial or failed fill leaves the windows `feed`, with the reason
logged and counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import polars as pl

from ..contract.feed import GAP_STARTUP, FeedGap

log = logging.getLogger(__name__)
MAX_RUNNING = 2  # fills fetched at once (the venue's rate limit is shared with everything else the user runs)
RECENT_OUTAGES = 64  # closed outages remembered to be healed with the id jumps inside them


class FillResult(Protocol):
    """What a fetch returns: the trades (tick contract), whether they are provably all, and why not."""

    ticks: pl.DataFrame
    complete: bool
    reason: str


Fetch = Callable[[str, str, int, int], Awaitable[FillResult]]  # (exchange, symbol, last id, next id) -> fill


@dataclass
class Healed:
    """A finished fill for the runner: trades to fold in and the gaps to forget (none unless complete)."""

    ticks: pl.DataFrame
    heal: list[FeedGap]


@dataclass
class HealStats:
    """Fills by outcome, and the trades they brought."""

    complete: int = 0
    partial: int = 0
    failed: int = 0
    trades: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """The counters for the run summary."""
        return {"complete": self.complete, "partial": self.partial, "failed": self.failed, "trades": self.trades,
                **({"reasons": dict(self.reasons)} if self.reasons else {})}


class Healer:
    """Schedules a fill for every id jump a batch reports and hands back finished ones; runs on the event loop."""

    def __init__(self, fetch: Fetch, *, on_result: Callable[[str, int], None] | None = None):
        self.fetch = fetch
        self.on_result = on_result  # (outcome, trades): metrics
        self.stats = HealStats()
        self._outages: list[FeedGap] = []
        self._running: set[asyncio.Task] = set()
        self._queue: list[FeedGap] = []
        self._done: list[Healed] = []

    def watch(self, gaps: list[FeedGap]) -> None:
        """Remember closed outages; queue a fill for each id jump (started while fewer than MAX_RUNNING run)."""
        for gap in gaps:
            if gap.ids is not None:
                self._queue.append(gap)
            elif gap.end is not None and gap.reason != GAP_STARTUP:  # before the start nothing is known
                self._outages = [*self._outages, gap][-RECENT_OUTAGES:]
        self._start()

    def collect(self) -> list[Healed]:
        """Fills finished since the last call."""
        done, self._done = self._done, []
        self._start()
        return done

    def busy(self) -> bool:
        """Whether fills are queued or running."""
        return bool(self._queue or self._running)

    async def close(self) -> None:
        """Cancel what is still running (the windows stay feed)."""
        for task in list(self._running):
            task.cancel()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    def _start(self) -> None:
        """Start queued fills up to MAX_RUNNING."""
        while self._queue and len(self._running) < MAX_RUNNING:
            task = asyncio.ensure_future(self._fill(self._queue.pop(0)))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _fill(self, jump: FeedGap) -> None:
        """Fetch one jump's trades; on a complete fill, heal the jump and the symbol's outages within it."""
        assert jump.ids is not None
        symbol = jump.symbols[0]
        try:
            fill = await self.fetch(jump.exchange, symbol, *jump.ids)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 (a failed fill leaves the gap feed; the stream goes on)
            self._count("failed", 0, f"{type(exc).__name__}: {exc}")
            log.warning("could not fill %s %s ids %s: %s", jump.exchange, symbol, jump.ids, exc)
            return
        heal: list[FeedGap] = []
        if fill.complete:
            heal = [jump, *self._within(jump, symbol)]
            self._count("complete", fill.ticks.height, None)
        else:
            self._count("partial", fill.ticks.height, fill.reason)
            log.warning("fill of %s %s ids %s incomplete: %s", jump.exchange, symbol, jump.ids, fill.reason)
        self._done.append(Healed(fill.ticks, heal))

    def _within(self, jump: FeedGap, symbol: str) -> list[FeedGap]:
        """The symbol's rows of remembered outages the jump's span (its trades before and after) overlaps: with the
        ids consecutive up to the jump and from it on, a complete fill leaves none of the symbol's trades missing
        there (an outage may start before the symbol's last trade, e.g. one delivered on reconnect)."""
        end = jump.end if jump.end is not None else jump.start
        return [FeedGap(g.exchange, (symbol,), g.start, g.end, g.reason) for g in self._outages
                if g.exchange == jump.exchange and (not g.symbols or symbol in g.symbols)
                and g.end is not None and g.start <= end and jump.start <= g.end]

    def _count(self, outcome: str, trades: int, reason: str | None) -> None:
        """Tally one fill."""
        setattr(self.stats, outcome, getattr(self.stats, outcome) + 1)
        self.stats.trades += trades
        if reason:
            self.stats.reasons[reason] = self.stats.reasons.get(reason, 0) + 1
        if self.on_result:
            self.on_result(outcome, trades)
