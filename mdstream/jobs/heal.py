"""Healing feed gaps from a venue's REST history while the stream runs.

A trade-id jump on a venue with consecutive ids (Binance) names exactly what was missed: the ids between the last
trade before an outage and the first after it. For each one the healer fetches those trades (off the event loop's
critical path, a few at a time), hands them to the engine as late trades and, when the fill is proven complete
(every id there), heals the jump and the outage of that symbol it lies in: the windows are emitted again, equal to
an uninterrupted feed, without `gap = feed`. A partial or failed fill leaves the windows `feed`, with the reason
logged and counted.

At the job's start the window holding the start instant is partial. Given the ids of the first trades the feed
delivers for a symbol (those at its earliest time), the healer fetches the trades from the start of that window
(of the longest timeframe that began at most half the revision horizon before the start, so the fill is still
admitted) up to them; complete, the symbol's startup gap shrinks to end before that window. Longer windows stay
partial: they began before it. The ids are the venue's trade numbers (Binance) or, where those are not consecutive,
located in the history by the fill (Deribit: their trade_seq).

A fill is counted when the runner collects it: one whose oldest trade is older than what the engine can still
revise is counted partial, its gaps kept (its trades would be quarantined as too late).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Protocol

import polars as pl

from ..contract import columns as c
from ..contract import timeframes as tfm
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
# the same, given also the time of the last trade before the jump: for a venue whose history is paged by time
FetchFrom = Callable[[str, str, int, int, datetime], Awaitable[FillResult]]
# (exchange, symbol, ids of the feed's earliest trades of the symbol, their time, from) -> fill
Since = Callable[[str, str, tuple[str, ...], datetime, datetime], Awaitable[FillResult]]
PAST_HORIZON = "older than the revision horizon"
_US = timedelta(microseconds=1)


def start_window(start: datetime, timeframes: Sequence[str], horizon_s: float) -> datetime:
    """The earliest window start, over `timeframes`, of a window holding `start` that began at most horizon/2
    before it (a 15 s or 1 m window, usually): from there a fill at start can make the windows whole."""
    us, reach = tfm.epoch_us(start), int(horizon_s * 1_000_000) // 2
    floors = [us // tfm.duration_us(t) * tfm.duration_us(t) for t in timeframes]
    return datetime.fromtimestamp(min(f for f in floors if f >= us - reach) / 1e6, start.tzinfo)


@dataclass
class Healed:
    """A finished fill for the runner: trades to fold in and the gaps to forget (none unless complete)."""

    ticks: pl.DataFrame
    heal: list[FeedGap]
    keep: list[FeedGap] = field(default_factory=list)  # gaps that stay, narrowed (added after `heal` is forgotten)


@dataclass
class HealStats:
    """Fills by outcome, and the trades they brought."""

    complete: int = 0
    partial: int = 0
    failed: int = 0
    trades: int = 0
    windows: int = 0  # windows emitted again without feed (counted by the engine's ledger)
    reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """The counters for the run summary."""
        return {"complete": self.complete, "partial": self.partial, "failed": self.failed, "trades": self.trades,
                "windows": self.windows,
                **({"reasons": dict(self.reasons)} if self.reasons else {})}


class Healer:
    """Schedules a fill for every id jump a batch reports, by `fetch` or, for a history paged by time, by
    `fetch_from` (also given the jump's start: the time of its last trade before), and, given `since`, for each
    symbol's start; hands back finished ones; runs on the event loop."""

    def __init__(self, fetch: Fetch | None = None, *, fetch_from: FetchFrom | None = None,
                 since: Since | None = None, on_result: Callable[[str, int], None] | None = None):
        if (fetch is None) == (fetch_from is None):
            raise ValueError("a healer needs exactly one of fetch and fetch_from")
        self.fetch, self.fetch_from, self.since = fetch, fetch_from, since
        self.on_result = on_result  # (outcome, trades): metrics
        self.stats = HealStats()
        self._outages: list[FeedGap] = []
        self._running: set[asyncio.Task] = set()
        self._queue: list[Callable[[], Awaitable[None]]] = []
        self._done: list[tuple[Healed, str | None, str]] = []  # (fill, reason if incomplete, what was filled)
        self._starts: dict[str, FeedGap] = {}  # symbol -> its startup gap, until its first trade is seen
        self._from: datetime | None = None
        self._connected: list[FeedGap] = []

    def starting(self, gaps: list[FeedGap], start_from: datetime) -> None:
        """Heal these per-symbol startup gaps from `start_from` (see start_window) once each symbol trades."""
        if self.since is not None:
            self._starts = {g.symbols[0]: g for g in gaps if len(g.symbols) == 1}
            self._from = start_from

    def watch(self, gaps: list[FeedGap], ticks: pl.DataFrame | None = None) -> None:
        """Remember closed outages; queue a fill for each id jump and each symbol's first trades (started while
        fewer than MAX_RUNNING run)."""
        for gap in gaps:
            if gap.ids is not None:
                self._queue.append(partial(self._fill, gap))
            elif gap.end is not None and gap.reason == GAP_STARTUP:
                self._connected.append(gap)  # the feed's own start: from connecting to its first trade
            elif gap.end is not None:
                self._outages = [*self._outages, gap][-RECENT_OUTAGES:]
        if self._starts and ticks is not None and ticks.height:
            ts = pl.col(c.TIMESTAMP)
            firsts = (ticks.filter(pl.col(c.SYMBOL).is_in(list(self._starts)) & pl.col(c.ID).is_not_null())
                      .filter(ts == ts.min().over(c.SYMBOL))
                      .group_by(c.SYMBOL).agg(pl.col(c.ID).unique().sort(), ts.first()).rows())
            for symbol, ids, at in firsts:
                gap = self._starts.pop(symbol)
                self._queue.append(partial(self._fill_start, gap, tuple(ids), at))
        self._start()

    def collect(self, revisable_from: datetime | None = None) -> list[Healed]:
        """Fills finished since the last call, counted by outcome; one reaching before `revisable_from` (the
        oldest event the engine still takes) heals nothing: its windows cannot all be revised."""
        done, self._done = self._done, []
        out = []
        for fill, reason, what in done:
            oldest = fill.ticks.get_column(c.TIMESTAMP).min() if fill.ticks.height else None
            if reason is None and revisable_from is not None and isinstance(oldest, datetime) and oldest < revisable_from:
                reason = PAST_HORIZON
            if reason is None:
                self._count("complete", fill.ticks.height, None)
            else:
                self._count("partial", fill.ticks.height, reason)
                log.warning("fill of %s incomplete: %s", what, reason)
                fill = Healed(fill.ticks, [])
            out.append(fill)
        self._start()
        return out

    def busy(self) -> bool:
        """Whether fills are queued, running or not collected."""
        return bool(self._queue or self._running or self._done)

    async def close(self) -> None:
        """Cancel what is still running (the windows stay feed)."""
        for task in list(self._running):
            task.cancel()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    def _start(self) -> None:
        """Start queued fills up to MAX_RUNNING."""
        while self._queue and len(self._running) < MAX_RUNNING:
            task = asyncio.ensure_future(self._queue.pop(0)())
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _fill(self, jump: FeedGap) -> None:
        """Fetch one jump's trades; complete, it heals the jump and the symbol's outages within it."""
        assert jump.ids is not None
        symbol = jump.symbols[0]
        what = f"{jump.exchange} {symbol} ids {jump.ids}"
        if self.fetch_from is not None:
            call = self.fetch_from(jump.exchange, symbol, *jump.ids, jump.start)
        else:
            assert self.fetch is not None
            call = self.fetch(jump.exchange, symbol, *jump.ids)
        fill = await self._fetch(what, call)
        if fill is not None:
            heal = [jump, *self._within(jump, symbol)] if fill.complete else []
            self._done.append((Healed(fill.ticks, heal), None if fill.complete else fill.reason, what))

    async def _fill_start(self, gap: FeedGap, first: tuple[str, ...], at: datetime) -> None:
        """Fetch a symbol's trades from the start window up to its first trades seen (`first`: their ids, at `at`);
        complete, the startup gap ends before that window."""
        assert self.since is not None and self._from is not None
        symbol, start_from = gap.symbols[0], self._from
        what = f"{gap.exchange} {symbol} from {start_from.isoformat()} to id {first[0]}"
        fill = await self._fetch(what, self.since(gap.exchange, symbol, first, at, start_from))
        if fill is not None:
            narrowed = [FeedGap(gap.exchange, gap.symbols, gap.start, start_from - _US, gap.reason)]
            # the feed's own startup gap (connect to first trade) lies within what the fill covers
            feed = [FeedGap(g.exchange, (symbol,), g.start, g.end, g.reason) for g in self._connected
                    if g.exchange == gap.exchange and (not g.symbols or symbol in g.symbols)]
            healed = Healed(fill.ticks, [gap, *feed], narrowed if gap.start < start_from - _US else [])
            self._done.append((healed, None if fill.complete else fill.reason, what))

    async def _fetch(self, what: str, call: Awaitable[FillResult]) -> FillResult | None:
        """Await one fetch; a failure is counted and logged (the windows stay feed) and gives None."""
        try:
            return await call
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 (a failed fill leaves the gap feed; the stream goes on)
            self._count("failed", 0, f"{type(exc).__name__}: {exc}")
            log.warning("could not fill %s: %s", what, exc)
            return None

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
