"""Live trades of more venues (OKX, Bybit, Coinbase, Kraken, Deribit, Hyperliquid, ...) through ccxt's WebSocket API,
with the same dedupe, gap, reconnect and accounting rules as the Binance source."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import polars as pl

from ..contract import columns as c
from ..contract import schema
from ..contract.clock import Clock
from ..contract.errors import ConfigError, SourceError
from ..contract.feed import GAP_DISCONNECT, GAP_SILENT, GAP_STARTUP, SourceChunk
from ..contract.instruments import Instrument
from ..inputs.decode import MAX_AMOUNT, MAX_PRICE, MAX_TRADE_MS, MIN_TRADE_MS, TRADE_ID, strip_trade_id
from ..inputs.parse import LINE, RAW, Check, any_failure, no_quarantine, not_positive, split_checked
from .base import FeedTracker
from .binance import backoff_delays
from .ccxt_clients import close_clients, release, track_clients
from .ccxt_markets import VENUES, aim, find_market, instrument_of, label_of, venue_of
from .ccxt_venue_rules import MAKER_SIDE, SEQUENCE_FIELD, venue_symbol
from .status import FeedStatus, tally

log = logging.getLogger(__name__)

# Trades ccxt keeps per symbol (each a dict with the raw message): a burst larger than this between two reads
# overflows it, which is reported as a gap (GAP_OVERFLOW), never passed over in silence.
TRADES_LIMIT = 5_000
GAP_OVERFLOW = "ccxt trade cache overflow"
OTHER_SYMBOL = "trade of another symbol"


def _exchange_class(module: Any, venue: str) -> Any:
    """The ccxt class of `venue` in `module` (ccxt or ccxt.pro), or ConfigError naming the covered venues."""
    cls = getattr(module, venue, None)
    if cls is None or not isinstance(cls, type):
        raise ConfigError(f"unknown ccxt exchange {venue!r}; covered: {', '.join(VENUES)} (any ccxt.pro id works)")
    return cls


def _config() -> dict:
    """ccxt constructor options: its rate limiter on, a trade cache of TRADES_LIMIT per symbol."""
    return {"enableRateLimit": True, "options": {"tradesLimit": TRADES_LIMIT}}


def _after(store: Any, last: dict | None) -> tuple[list[dict], bool]:
    """(the items of a ccxt cache after `last`, oldest first; whether `last` was found), scanned from the newest."""
    new: list[dict] = []
    for i in range(len(store) - 1, -1, -1):
        item = store[i]
        if item is last:
            new.reverse()
            return new, True
        new.append(item)
    new.reverse()
    return new, False


class CcxtSource:
    """Trades of one venue's symbols through ccxt.pro (`watch_trades_for_symbols`, else one `watch_trades` per
    symbol). Markets load once at start (REST): symbols in the venue's form or ccxt's unified form, labels as Tardis
    names the venue's market (okex-swap, bybit, ...), instruments from ccxt's market data (contractSize, linear,
    inverse, spot). Ticks carry the venue's own symbol; dedupe is exact on (symbol, id), or on (symbol, sequence
    number) where the venue numbers trades consecutively (SEQUENCE_FIELD), whose jumps are then reported as gaps."""

    def __init__(self, exchange: str, symbols: list[str] | tuple[str, ...], *, url: str | None = None,
                 silence_timeout: float = 10.0, flush_interval: float = 0.25, max_rows: int = 50_000,
                 backoff_initial: float = 0.25, backoff_max: float = 30.0, max_retries: int | None = None,
                 seed: int | None = None, markets: dict[str, dict] | None = None):
        if not symbols:
            raise ConfigError("at least one symbol is required")
        if silence_timeout <= 0:
            raise ConfigError("silence_timeout must be positive")
        import ccxt

        self.venue, types = venue_of(exchange)
        self.url = url.rstrip("/") if url else None
        self.silence_timeout, self.flush_interval, self.max_rows = silence_timeout, flush_interval, max_rows
        self.backoff_initial, self.backoff_max, self.max_retries = backoff_initial, backoff_max, max_retries
        self.rng = random.Random(seed)
        self._markets = markets if markets is not None else self._load_markets(_exchange_class(ccxt, self.venue))
        found = [find_market(self._markets, s, types, self.venue) for s in symbols]
        labels = sorted({label_of(self.venue, m) for m in found})
        if len(labels) > 1:
            raise ConfigError(f"symbols {', '.join(symbols)} span markets {', '.join(labels)}: run one stream per market")
        self.exchange = labels[0]
        self.unified = tuple(dict.fromkeys(str(m["symbol"]) for m in found))
        self.ids = {str(m["symbol"]): venue_symbol(self.venue, m) for m in found}  # unified -> the venue's own
        self.symbols = tuple(self.ids[u] for u in self.unified)
        self.instruments: list[Instrument] = [instrument_of(self.exchange, m, self.venue) for m in found]
        self.source = self.url or f"ccxt:{self.venue}"
        self.status = FeedStatus(self.exchange)
        self.seq_field = SEQUENCE_FIELD.get(self.venue)
        self.tracker = FeedTracker(self.exchange, self.symbols, source=self.source,
                                   check_id_jumps=self.seq_field is not None)
        self._last_read: dict[str, tuple[Any, dict]] = {}  # unified symbol -> (ccxt's store, newest trade read)
        self._clients: dict[str, Any] = {}  # WebSocket URL -> ccxt's connection object seen at the last read
        self._made: list[Any] = []  # every ccxt client of the running watch loop (ccxt_clients)

    def _apply_url(self, ex: Any) -> Any:
        """Point a ccxt exchange at `url` (every REST and WebSocket endpoint keeps its path)."""
        return aim(ex, self.url)

    def _load_markets(self, cls: Any) -> dict[str, dict]:
        """The venue's markets over REST (once, at start); SourceError naming the venue when it cannot be read."""
        import ccxt

        ex = self._apply_url(cls(_config()))
        try:
            return ex.load_markets()
        except ccxt.BaseError as exc:
            raise SourceError(f"cannot load the markets of {self.venue}: {type(exc).__name__}: {exc}") from exc

    def chunks(self, clock: Clock) -> AsyncIterator[SourceChunk]:
        """Decoded, deduplicated chunks of trades and the gaps seen, timed by `clock`; runs until cancelled."""
        return tally(self._chunks(clock), self.status)

    async def _chunks(self, clock: Clock) -> AsyncIterator[SourceChunk]:
        """The watch loop: a failed or silent watch closes the connection, reports a gap and reconnects."""
        import ccxt
        import ccxt.pro

        ex = self._apply_url(_exchange_class(ccxt.pro, self.venue)(_config()))
        ex.set_markets(self._markets)
        self._made = track_clients(ex)
        multi = bool(ex.has.get("watchTradesForSymbols"))
        delays = backoff_delays(self.backoff_initial, self.backoff_max, self.rng)
        tasks: dict[str, asyncio.Future] = {}
        failures = 0
        gap = self.tracker.down(GAP_STARTUP, clock.now())  # the window holding the start time is partial
        if gap is not None:
            yield SourceChunk(gaps=[gap])
        try:
            while True:
                for key in (("*",) if multi else self.unified):
                    if key not in tasks:
                        call = ex.watch_trades_for_symbols(list(self.unified)) if multi else ex.watch_trades(key)
                        tasks[key] = asyncio.ensure_future(call)
                done, _ = await asyncio.wait(set(tasks.values()), timeout=self.silence_timeout,
                                             return_when=asyncio.FIRST_COMPLETED)
                reason: str | None = GAP_SILENT if not done else None
                for key, task in list(tasks.items()):
                    if task in done:
                        del tasks[key]
                        try:
                            task.result()  # only a wake-up: the stores are read below
                        except (ccxt.NetworkError, ccxt.ExchangeNotAvailable, OSError) as exc:
                            reason = f"{GAP_DISCONNECT}: {type(exc).__name__}: {exc}"
                        except ccxt.BaseError as exc:
                            raise SourceError(f"{self.venue} refused the trade subscription: {exc}") from exc
                # ccxt's answer holds the new trades of one symbol only: every symbol's store is read instead
                trades, overflow = self._drain(ex)  # after a failed or silent watch too: what came before it counts
                if trades and self._reconnected(ex):
                    # ccxt dialled again by itself (the old connection closed while no watch was pending)
                    self.status.lost(GAP_DISCONNECT)
                    gap = self.tracker.down(GAP_DISCONNECT, clock.now())
                    if gap is not None:
                        yield SourceChunk(gaps=[gap])
                if overflow:
                    gap = self.tracker.down(GAP_OVERFLOW, clock.now())
                    if gap is not None:
                        yield SourceChunk(gaps=[gap])
                if trades:
                    if not self.status.up:
                        self.status.connected()
                        failures, delays = 0, backoff_delays(self.backoff_initial, self.backoff_max, self.rng)
                    yield self._chunk(trades, clock)
                if reason is None:
                    continue
                log.warning("feed %s %s lost: %s", self.venue, self.source, reason)
                failures += 1
                self.status.lost(reason, failed=not self.status.up)
                gap = self.tracker.down(GAP_SILENT if reason == GAP_SILENT else GAP_DISCONNECT, clock.now())
                if gap is not None:
                    yield SourceChunk(gaps=[gap])
                await self._drop(ex, tasks)
                self._clients = {}
                if self.max_retries is not None and failures > self.max_retries:
                    raise SourceError(f"feed {self.venue} unreachable after {failures} attempts")
                await asyncio.sleep(next(delays))
        finally:
            await self._drop(ex, tasks)
            await release(ex)

    def _drain(self, ex: Any) -> tuple[list[dict], bool]:
        """(trades appended to ccxt's per-symbol stores since the last read, whether a store overflowed: the last
        trade read was evicted before it was passed). When ccxt replaced a store, the unread rest of the old one
        comes first, then the whole new one."""
        out: list[dict] = []
        overflow = False
        stores = getattr(ex, "trades", None) or {}
        for symbol in self.unified:
            store = stores.get(symbol)
            known, last = self._last_read.get(symbol, (None, None))
            new: list[dict] = []
            if known is not None and store is not known:
                new, _ = _after(known, last)  # what the replaced store still held unread
                last = None
            if store:
                fresh, found = _after(store, last)
                overflow = overflow or (last is not None and not found)
                new.extend(fresh)
                if new:
                    self._last_read[symbol] = (store, new[-1])
            elif new:
                self._last_read[symbol] = (known, new[-1])
            out.extend(new)
        return out, overflow

    def _reconnected(self, ex: Any) -> bool:
        """True when a WebSocket connection seen before was replaced by a new one since the last read."""
        # ccxt may dial again by itself, in the same client object or a new one: its live connection object tells.
        # Held here, an old one cannot hand its identity to a new one.
        now = {url: getattr(client, "connection", None) for url, client in ex.clients.items()}
        replaced = any(now.get(url) is not None and now[url] is not known for url, known in self._clients.items()
                       if known is not None)
        self._clients.update((url, conn) for url, conn in now.items() if conn is not None)  # a closed one is kept
        return replaced

    async def _drop(self, ex: Any, tasks: dict[str, asyncio.Future]) -> None:
        """Forget the pending watches and close every WebSocket connection (the next watch reconnects)."""
        for task in tasks.values():  # first: none dials again while the connections close
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        tasks.clear()
        await close_clients(ex, self._made)

    def _chunk(self, trades: list[dict], clock: Clock) -> SourceChunk:
        """ccxt trades -> checked, deduplicated ticks, quarantine and accounting of one read."""
        now = clock.now()
        frame = self._frame(trades, now)
        ours = frame.filter(pl.col(c.SYMBOL).is_not_null())
        ignored = {OTHER_SYMBOL: frame.height - ours.height} if ours.height < frame.height else {}
        ticks, quarantine = self._check(ours, now)
        kept = self.tracker.accept(ticks, TRADE_ID, now=now)
        parts = [q for q in (quarantine, kept.quarantine) if q.height]
        quarantine = pl.concat(parts) if len(parts) > 1 else (parts[0] if parts else no_quarantine())
        return SourceChunk(ticks=strip_trade_id(kept.ticks), quarantine=quarantine, gaps=kept.gaps,
                           received=len(trades), duplicates=kept.duplicates, ignored=ignored)

    def _frame(self, trades: list[dict], now: datetime) -> pl.DataFrame:
        """One row per ccxt trade: the venue's symbol (null for another symbol), fields as ccxt parsed them, and
        the venue's sequence number (`_seq`, SEQUENCE_FIELD of the raw trade; null where the venue has none)."""
        ids, field = self.ids, self.seq_field
        return pl.DataFrame({
            c.SYMBOL: [ids.get(t.get("symbol") or "") for t in trades],
            "_ms": [t.get("timestamp") for t in trades],
            c.ID: [None if t.get("id") is None else str(t["id"]) for t in trades],
            c.SIDE: [t.get("side") for t in trades],
            c.PRICE: [t.get("price") for t in trades],
            c.AMOUNT: [t.get("amount") for t in trades],
            "_seq": [(t.get("info") or {}).get(field) if field else None for t in trades],
        }, schema={c.SYMBOL: pl.String, "_ms": pl.Int64, c.ID: pl.String, c.SIDE: pl.String, c.PRICE: pl.Float64,
                   c.AMOUNT: pl.Float64, "_seq": pl.Int64}, strict=False).with_columns(
            pl.lit(now).cast(schema.TS).alias(c.LOCAL_TIMESTAMP))

    def _check(self, frame: pl.DataFrame, now: datetime) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(ticks with `_trade_id`, quarantine naming the first failing field) of a frame of our symbols."""
        ms = pl.col("_ms")
        checks: list[Check] = [
            ("timestamp", ~ms.is_between(MIN_TRADE_MS, MAX_TRADE_MS), "missing or implausible trade time"),
            ("price", not_positive(pl.col(c.PRICE), MAX_PRICE), "price not a positive number"),
            ("amount", not_positive(pl.col(c.AMOUNT), MAX_AMOUNT), "amount not a positive number"),
        ]
        side = pl.col(c.SIDE).str.to_lowercase()
        if self.venue in MAKER_SIDE:  # the venue names the maker's side: the aggressor took the other
            side = side.replace({c.SIDE_BUY: c.SIDE_SELL, c.SIDE_SELL: c.SIDE_BUY})
        frame = frame.with_columns(
            pl.lit(self.exchange).alias(c.EXCHANGE),
            pl.from_epoch(ms.clip(MIN_TRADE_MS, MAX_TRADE_MS), time_unit="ms").cast(schema.TS).alias(c.TIMESTAMP),
            pl.when(side.is_in([c.SIDE_BUY, c.SIDE_SELL])).then(side).otherwise(pl.lit(c.SIDE_UNKNOWN)).alias(c.SIDE),
            # the integer key of dedupe and id jumps: the venue's sequence number, else a numeric trade id
            (pl.col("_seq") if self.seq_field else pl.col(c.ID).cast(pl.Int64, strict=False)).alias(TRADE_ID),
            pl.format("{} {} {} {} {} {}", c.SYMBOL, c.ID, "_ms", c.SIDE, c.PRICE, c.AMOUNT).alias(RAW),
            pl.lit(None, pl.Int64).alias(LINE),
            any_failure(checks),
        )
        return split_checked(frame, [*c.TICK_COLUMNS, TRADE_ID], checks, self.source, now)
