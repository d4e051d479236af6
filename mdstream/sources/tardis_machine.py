"""tardis-machine's normalized real-time WebSocket (`/ws-stream-normalized`) as a trade source."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import datetime
from urllib.parse import quote

import orjson

from ..contract import defaults as d
from ..contract.clock import Clock
from ..contract.errors import ConfigError
from ..contract.feed import GAP_DISCONNECT, SourceChunk
from ..inputs.decode import Decoded, decode_tardis, raw_frame
from ..kernel.gaps import CONSECUTIVE_ID_PREFIXES
from .base import FeedTracker
from .binance import WsFeed
from .status import FeedStatus

DEFAULT_URL = "ws://localhost:8001"
# A cheap pre-filter: only messages that may be a disconnect report are parsed here (the decoder parses the rest).
_MAYBE_DISCONNECT = re.compile(r'"disconnect"')


class TardisMachineSource:
    """Normalized `trade` messages of one exchange from a tardis-machine server; same reconnect/gap rules as Binance.

    Trades are deduplicated by id when ids exist; consecutive-id jumps are only checked for binance* exchanges,
    whose ids are consecutive. tardis-machine's own `disconnect` messages open a feed gap.
    """

    def __init__(self, exchange: str, symbols: list[str] | tuple[str, ...], *, url: str | None = None,
                 silence_timeout: float = d.SILENCE_TIMEOUT_S, flush_interval: float = d.FLUSH_INTERVAL_S,
                 max_rows: int = d.MAX_ROWS, backoff_initial: float = d.BACKOFF_INITIAL_S, backoff_max: float = d.BACKOFF_MAX_S,
                 max_retries: int | None = None, seed: int | None = None):
        if not exchange or not symbols:
            raise ConfigError("tardis-machine needs an exchange and at least one symbol")
        self.exchange = exchange
        self.symbols = tuple(symbols)
        self.base_url = (url or DEFAULT_URL).rstrip("/")
        self.silence_timeout = silence_timeout
        self.flush_interval, self.max_rows = flush_interval, max_rows
        self.status = FeedStatus(exchange)
        self.tracker = FeedTracker(exchange, self.symbols, check_id_jumps=exchange.startswith(CONSECUTIVE_ID_PREFIXES),
                                   source=self.base_url)
        self.feed = WsFeed(self.stream_url(), self._decode, self.tracker, silence_timeout=silence_timeout,
                           backoff_initial=backoff_initial, backoff_max=backoff_max, max_retries=max_retries, seed=seed,
                           outage=self._outage, status=self.status)

    def options(self) -> list[dict]:
        """The stream options: one entry for this exchange, trades only, with disconnect messages."""
        return [{
            "exchange": self.exchange,
            "symbols": list(self.symbols),
            "dataTypes": ["trade"],
            "withDisconnectMessages": True,
            # tardis-machine restarts a stale exchange connection itself, sooner than our own watchdog
            "timeoutIntervalMS": int(self.silence_timeout * 1000 / 2),
        }]

    def stream_url(self) -> str:
        """<base>/ws-stream-normalized?options=<URL-encoded JSON array of options>."""
        options = json.dumps(self.options(), separators=(",", ":"))
        return f"{self.base_url}/ws-stream-normalized?options={quote(options, safe='')}"

    def _decode(self, messages: list[str], received: list[int], now: datetime) -> Decoded:
        """Normalized messages -> ticks of this exchange and these symbols, quarantine, non-trade counts."""
        return decode_tardis(raw_frame(messages, received), source=self.base_url, now=now, exchange=self.exchange,
                             symbols=self.symbols)

    @staticmethod
    def _outage(message: str) -> str | None:
        """"disconnect" when the message is tardis-machine's report that its exchange connection dropped."""
        if not _MAYBE_DISCONNECT.search(message):
            return None
        try:
            parsed = orjson.loads(message)
        except orjson.JSONDecodeError:
            return None
        return GAP_DISCONNECT if isinstance(parsed, dict) and parsed.get("type") == "disconnect" else None

    def chunks(self, clock: Clock) -> AsyncIterator[SourceChunk]:
        """Decoded, deduplicated chunks of trades and the gaps seen, timed by `clock`; runs until cancelled."""
        return self.feed.chunks(clock)
