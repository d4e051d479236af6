"""Binance public trade streams over WebSocket, with reconnects, a silence watchdog, dedupe and gap reports."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import polars as pl
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from ..contract import defaults as d
from ..contract.clock import Clock
from ..contract.errors import ConfigError, SourceError
from ..contract.feed import GAP_DISCONNECT, GAP_SILENT, GAP_STARTUP, SourceChunk
from ..contract.timeframes import epoch_us
from ..inputs.decode import TRADE_ID, Decoded, decode_binance, raw_frame, strip_trade_id
from ..inputs.parse import no_quarantine
from .base import FeedTracker
from .status import FeedStatus, tally

log = logging.getLogger(__name__)

SPOT, FUTURES, DELIVERY = "binance", "binance-futures", "binance-delivery"
# Public market-data hosts: spot, USD-M futures (fstream), COIN-M futures (dstream, Tardis' binance-delivery).
URLS = {SPOT: "wss://stream.binance.com:9443", FUTURES: "wss://fstream.binance.com", DELIVERY: "wss://dstream.binance.com"}
SPOT_URL, FUTURES_URL, DELIVERY_URL = URLS[SPOT], URLS[FUTURES], URLS[DELIVERY]
MARKETS = tuple(URLS)
MAX_MESSAGE = 16 * 2**20  # bytes; exchange messages are a few hundred

# decode(messages, receive times in us, now) -> decoded ticks, quarantine and non-trade counts
Decoder = Callable[[list[str], list[int], datetime], Decoded]
# outage(message) -> a gap reason when the message itself reports an upstream outage, else None
OutageSignal = Callable[[str], str | None]


def backoff_delays(initial: float, maximum: float, rng: random.Random):
    """Endless reconnect delays in seconds: min(maximum, initial * 2**n) with full jitter in [50%, 100%]."""
    attempt = 0
    while True:
        yield min(maximum, initial * 2 ** attempt) * rng.uniform(0.5, 1.0)
        attempt += 1


class WsFeed:
    """A reconnecting WebSocket feed that yields decoded, deduplicated chunks and the gaps it observes, and keeps
    `status` (up/down, reconnects) current for metrics and health."""

    def __init__(self, url: str, decode: Decoder, tracker: FeedTracker, *, silence_timeout: float = d.SILENCE_TIMEOUT_S,
                 chunk_messages: int = 500, chunk_seconds: float = 0.02, backoff_initial: float = d.BACKOFF_INITIAL_S,
                 backoff_max: float = d.BACKOFF_MAX_S, max_retries: int | None = None, seed: int | None = None,
                 outage: OutageSignal | None = None, status: FeedStatus | None = None):
        if silence_timeout <= 0:
            raise ConfigError("silence_timeout must be positive")
        self.url, self.decode, self.tracker = url, decode, tracker
        self.silence_timeout, self.chunk_messages, self.chunk_seconds = silence_timeout, chunk_messages, chunk_seconds
        self.backoff_initial, self.backoff_max, self.max_retries = backoff_initial, backoff_max, max_retries
        self.rng = random.Random(seed)
        self.outage = outage
        self.status = status if status is not None else FeedStatus(tracker.exchange)

    @property
    def connects(self) -> int:
        """Successful connections so far."""
        return self.status.connects

    def chunks(self, clock: Clock) -> AsyncIterator[SourceChunk]:
        """Chunks of new ticks until cancelled, each recorded in `status`; raises SourceError after
        `max_retries` failed connects in a row."""
        return tally(self._chunks(clock), self.status)

    async def _chunks(self, clock: Clock) -> AsyncIterator[SourceChunk]:
        """The reconnect loop of `chunks`."""
        delays = backoff_delays(self.backoff_initial, self.backoff_max, self.rng)
        failures = 0
        first = True
        while True:
            reason, since, failed = GAP_DISCONNECT, None, False
            try:
                # messages up to MAX_MESSAGE bytes are taken in (a damaged one is quarantined, not a dropped line)
                async with connect(self.url, open_timeout=max(self.silence_timeout, 5.0), close_timeout=1.0,
                                   max_size=MAX_MESSAGE) as ws:
                    self.status.connected()
                    failures, delays = 0, backoff_delays(self.backoff_initial, self.backoff_max, self.rng)
                    if first:
                        # the window holding the start time is partial: trades before it are unknown
                        first, gap = False, self.tracker.down(GAP_STARTUP, clock.now())
                        if gap is not None:
                            yield SourceChunk(gaps=[gap])
                    async for chunk in self._read(ws, clock):
                        yield chunk
                    # silent: down since the last message, not since the watchdog noticed
                    reason, since = GAP_SILENT, self._last_message
            except (TimeoutError, OSError, ConnectionClosed, InvalidHandshake) as exc:
                log.warning("feed %s lost: %s", self.url, exc)
                failures += 1
                failed = not self.status.up
                reason = f"{GAP_DISCONNECT}: {exc}" if str(exc) else GAP_DISCONNECT
            except InvalidURI as exc:
                raise ConfigError(f"invalid feed URL {self.url!r}: {exc}") from exc
            self.status.lost(reason, since, failed=failed)
            gap = self.tracker.down(GAP_SILENT if reason == GAP_SILENT else GAP_DISCONNECT, clock.now())
            if gap is not None:
                yield SourceChunk(gaps=[gap])
            if self.max_retries is not None and failures > self.max_retries:
                raise SourceError(f"feed {self.url} unreachable after {failures} attempts")
            await asyncio.sleep(next(delays))

    async def _read(self, ws, clock: Clock) -> AsyncIterator[SourceChunk]:
        """Chunks from one connection; returns when the feed has been silent for `silence_timeout` seconds."""
        messages: list[str] = []
        received: list[int] = []
        self._last_message = chunk_start = time.monotonic()
        while True:
            now_mono = time.monotonic()
            if messages:
                timeout = max(0.0, chunk_start + self.chunk_seconds - now_mono)
            else:
                timeout = max(0.0, self._last_message + self.silence_timeout - now_mono)
            closed: ConnectionClosed | None = None
            try:
                message = await asyncio.wait_for(ws.recv(), timeout=timeout)
            except TimeoutError:
                if not messages:
                    log.warning("feed %s silent for %.1fs; reconnecting", self.url, self.silence_timeout)
                    return
                message = None
            except ConnectionClosed as exc:
                # what arrived before the close still counts: decode it first, then report the drop
                message, closed = None, exc
            outage = None
            if message is not None:
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                outage = self.outage(text) if self.outage is not None else None
                if not messages:
                    chunk_start = time.monotonic()
                self._last_message = time.monotonic()
                if outage is None:
                    messages.append(text)
                    received.append(epoch_us(clock.now()))
            if messages and (message is None or outage is not None or len(messages) >= self.chunk_messages
                             or time.monotonic() - chunk_start >= self.chunk_seconds):
                yield self._chunk(messages, received, clock)
                messages, received = [], []
            if outage is not None:
                # trades before the report were flushed above; the ones after it close the gap
                gap = self.tracker.down(outage, clock.now())
                yield SourceChunk(gaps=[gap] if gap is not None else [], received=1, ignored={outage: 1})
            if closed is not None:
                raise closed

    def _chunk(self, messages: list[str], received: list[int], clock: Clock) -> SourceChunk:
        """Decode, dedupe, gap- and plausibility-check one chunk of messages, with its accounting."""
        now = clock.now()
        decoded = self.decode(messages, received, now)
        kept = self.tracker.accept(decoded.ticks, TRADE_ID, now=now)
        parts = [q for q in (decoded.quarantine, kept.quarantine) if q.height]
        quarantine = pl.concat(parts) if len(parts) > 1 else (parts[0] if parts else no_quarantine())
        return SourceChunk(ticks=strip_trade_id(kept.ticks), quarantine=quarantine, gaps=kept.gaps,
                           received=len(messages), duplicates=kept.duplicates, ignored=decoded.ignored)


class BinanceSource:
    """Binance spot, USD-M futures or COIN-M futures `<symbol>@trade` combined streams; one tick per trade
    message, labelled binance, binance-futures or binance-delivery (Tardis' names); amounts as the venue
    reports them (COIN-M: contracts)."""

    def __init__(self, symbols: list[str] | tuple[str, ...], *, futures: bool = False, market: str | None = None,
                 url: str | None = None, silence_timeout: float = d.SILENCE_TIMEOUT_S, flush_interval: float = d.FLUSH_INTERVAL_S,
                 max_rows: int = d.MAX_ROWS, backoff_initial: float = d.BACKOFF_INITIAL_S, backoff_max: float = d.BACKOFF_MAX_S,
                 max_retries: int | None = None, seed: int | None = None):
        if not symbols:
            raise ConfigError("at least one symbol is required")
        market = market or (FUTURES if futures else SPOT)
        if market not in URLS:
            raise ConfigError(f"unknown Binance market {market!r}: one of {', '.join(MARKETS)}")
        self.exchange = market
        self.symbols = tuple(s.upper() for s in symbols)
        self.base_url = (url or URLS[market]).rstrip("/")
        self.flush_interval, self.max_rows = flush_interval, max_rows
        self.status = FeedStatus(self.exchange)
        self.tracker = FeedTracker(self.exchange, self.symbols, check_id_jumps=True, source=self.base_url)
        self.feed = WsFeed(self.stream_url(), self._decode, self.tracker, silence_timeout=silence_timeout,
                           backoff_initial=backoff_initial, backoff_max=backoff_max, max_retries=max_retries, seed=seed,
                           status=self.status)

    def stream_url(self) -> str:
        """The combined-stream URL: <base>/stream?streams=<sym>@trade/<sym>@trade (symbols lower-case)."""
        streams = "/".join(f"{s.lower()}@trade" for s in self.symbols)
        return f"{self.base_url}/stream?streams={streams}"

    def _decode(self, messages: list[str], received: list[int], now: datetime) -> Decoded:
        """Binance messages -> ticks of the subscribed symbols, quarantine, non-trade counts."""
        return decode_binance(raw_frame(messages, received), exchange=self.exchange, source=self.base_url, now=now,
                              symbols=self.symbols)

    def chunks(self, clock: Clock) -> AsyncIterator[SourceChunk]:
        """Decoded, deduplicated chunks of trades and the gaps seen, timed by `clock`; runs until cancelled."""
        return self.feed.chunks(clock)
