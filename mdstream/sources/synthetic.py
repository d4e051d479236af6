"""A simulated market: bursty, self-exciting trade arrivals and random-walk prices, deterministic per seed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

import numpy as np
import polars as pl

from ..contract import columns as c
from ..contract import defaults as d
from ..contract import schema
from ..contract.clock import Clock
from ..contract.errors import ConfigError
from ..contract.feed import SourceChunk
from ..contract.schema import empty_ticks
from ..contract.timeframes import epoch_us
from .status import FeedStatus, tally

EXCHANGE = "synthetic"
DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
DEFAULT_PRICES = {"BTCUSDT": 60_000.0, "ETHUSDT": 3_000.0, "SOLUSDT": 150.0}
BLOCK_US = 1_000_000  # the simulation advances in 1 s blocks, independent of how often it is polled

# Regimes: calm, active, burst; rate multipliers and a sticky Markov transition matrix (rows sum to 1).
REGIME_RATE = np.array([1.0, 4.0, 15.0])
REGIME_MOVES = np.array([[0.97, 0.025, 0.005], [0.10, 0.85, 0.05], [0.05, 0.35, 0.60]])


class SyntheticSource:
    """Trades for several symbols as the clock advances; event time = clock time; the same seed, the same market.

    Per symbol and 1 s block: count ~ Poisson(rate * regime multiplier + excitation * previous count), times
    uniform within the block; log price moves N(0, volatility) per trade, rounded to the tick; side = sign of
    the move (buy up, sell down, coin flip when flat); amount log-normal; ids consecutive from 1.
    """

    def __init__(self, symbols: list[str] | tuple[str, ...] = DEFAULT_SYMBOLS, *, seed: int = 0, rate: float = 5.0,
                 excitation: float = 0.3, volatility: float = 0.0002, tick: float = 0.01,
                 prices: dict[str, float] | None = None, start: datetime | None = None, until: datetime | None = None,
                 flush_interval: float = d.FLUSH_INTERVAL_S, max_rows: int = d.MAX_ROWS, poll: float = 0.05):
        if not symbols or rate <= 0 or not 0 <= excitation < 1 or poll <= 0:
            raise ConfigError("synthetic needs symbols, rate > 0, 0 <= excitation < 1 and poll > 0")
        self.exchange = EXCHANGE
        self.symbols = tuple(symbols)
        self.rate, self.excitation, self.volatility, self.tick = rate, excitation, volatility, tick
        self.until, self.flush_interval, self.max_rows, self.poll = until, flush_interval, max_rows, poll
        self._rng = np.random.default_rng(seed)
        prices = prices or {}
        self._price = {s: float(prices.get(s, DEFAULT_PRICES.get(s, 100.0))) for s in self.symbols}
        self._regime = {s: 0 for s in self.symbols}
        self._last_count = {s: 0 for s in self.symbols}
        self._next_id = {s: 1 for s in self.symbols}
        self._origin_us: int | None = None if start is None else epoch_us(start)  # default: the first clock reading
        self._blocks = 0  # blocks generated so far
        self._pending = empty_ticks()
        self._released_us: int | None = None
        self.status = FeedStatus(EXCHANGE, up=True)  # a simulation never disconnects

    def _block(self, start_us: int) -> list[pl.DataFrame]:
        """One simulated second of trades for every symbol, starting at `start_us`."""
        frames = []
        for symbol in self.symbols:
            rng = self._rng
            self._regime[symbol] = int(rng.choice(3, p=REGIME_MOVES[self._regime[symbol]]))
            intensity = self.rate * REGIME_RATE[self._regime[symbol]] + self.excitation * self._last_count[symbol]
            n = int(rng.poisson(intensity))
            self._last_count[symbol] = n
            if n == 0:
                continue
            offsets = np.sort(rng.integers(0, BLOCK_US, size=n))
            steps = rng.normal(0.0, self.volatility, size=n)
            raw = self._price[symbol] * np.exp(np.cumsum(steps))
            price = np.maximum(np.round(raw / self.tick) * self.tick, self.tick)
            move = price - np.concatenate(([self._price[symbol]], price[:-1]))  # the tick rule
            self._price[symbol] = float(price[-1])
            buy = np.where(move == 0, rng.random(n) < 0.5, move > 0)
            amount = np.maximum(np.round(rng.lognormal(-3.0, 1.2, size=n), 5), 1e-5)
            ids = np.arange(self._next_id[symbol], self._next_id[symbol] + n)
            self._next_id[symbol] += n
            stamps = pl.Series(start_us + offsets, dtype=pl.Int64).cast(schema.TS)
            frames.append(pl.DataFrame({
                c.EXCHANGE: [EXCHANGE] * n, c.SYMBOL: [symbol] * n, c.TIMESTAMP: stamps, c.LOCAL_TIMESTAMP: stamps,
                c.ID: ids.astype(str), c.SIDE: np.where(buy, c.SIDE_BUY, c.SIDE_SELL), c.PRICE: price, c.AMOUNT: amount,
            }))
        return frames

    def advance(self, now: datetime) -> pl.DataFrame:
        """Ticks with event time in (previous call's `now`, `now`], in time order; the market opens at `start` or
        the first call."""
        now_us = epoch_us(now)
        if self._origin_us is None:
            self._origin_us = now_us
        if self._released_us is None:
            self._released_us = self._origin_us
        if self.until is not None:
            now_us = min(now_us, epoch_us(self.until))
        frames = [self._pending]
        while self._origin_us + self._blocks * BLOCK_US <= now_us:
            frames.extend(self._block(self._origin_us + self._blocks * BLOCK_US))
            self._blocks += 1
        pending = schema.conform(pl.concat(frames), schema.TICK_SCHEMA).sort(c.TIMESTAMP, c.SYMBOL, maintain_order=True)
        due = pl.col(c.TIMESTAMP).dt.epoch("us") <= now_us
        self._pending = pending.filter(~due)
        self._released_us = max(self._released_us, now_us)
        return pending.filter(due)

    def finished(self) -> bool:
        """True once `until` is set and every trade up to it has been released."""
        return self.until is not None and self._released_us is not None and self._released_us >= epoch_us(self.until)

    def chunks(self, clock: Clock) -> AsyncIterator[SourceChunk]:
        """Chunks of the trades that became due as `clock` moved, polled every `poll` seconds; ends at `until`."""
        return tally(self._chunks(clock), self.status)

    async def _chunks(self, clock: Clock) -> AsyncIterator[SourceChunk]:
        """The polling loop of `chunks`: one record per trade, each accepted."""
        while not self.finished():
            ticks = self.advance(clock.now())
            if ticks.height:
                yield SourceChunk(ticks=ticks, received=ticks.height)
            await asyncio.sleep(self.poll)
