"""`mdstream serve`: a local, read-only web app over the DuckDB file, following a running stream live."""

from __future__ import annotations

import asyncio
import ipaddress
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web

from ..contract import dates, defaults, timeframes
from ..contract.clock import Clock, WallClock
from ..contract.errors import ConfigError, InputError, MdstreamError
from . import chart, page, quality
from .live import LiveFeed
from .readonly import DatabaseBusy, reading

KEEPALIVE_S = 15.0
DEFAULT_LIMIT = 2000
MAX_LIMIT = 100_000
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@dataclass(frozen=True)
class ServeOptions:
    """What `mdstream serve` serves and where."""

    db_path: str | Path
    host: str = "127.0.0.1"
    port: int = 8321
    allow_remote: bool = False
    metrics_url: str | None = None
    poll_s: float = defaults.SERVE_POLL_S
    features: tuple[str, ...] = chart.LEGEND_FEATURES


def is_loopback(host: str) -> bool:
    """True for 'localhost' and loopback addresses (127.0.0.0/8, ::1)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind(host: str, allow_remote: bool) -> None:
    """Refuse a non-loopback address unless `allow_remote`: the page has no authentication."""
    if not is_loopback(host) and not allow_remote:
        raise ConfigError(f"refusing to serve on {host}: anyone who can reach it could read the data; "
                          "pass --allow-remote to serve beyond this machine")


def parse_time(text: str | None, name: str = "time") -> datetime | None:
    """A query parameter as UTC datetime: epoch seconds or ISO 8601 (naive = UTC); ConfigError when neither."""
    return dates.parse_time(text, name, epoch_seconds=True) if text else None


def _json(body, status: int = 200) -> web.Response:
    """A JSON response (orjson: datetimes as ISO 8601)."""
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _error(exc: MdstreamError) -> web.Response:
    """Library errors as JSON: 503 while a writer holds the file, 404 for missing data, 400 for bad requests."""
    status = 503 if isinstance(exc, DatabaseBusy) else 404 if isinstance(exc, InputError) else 400
    return _json({"error": str(exc)}, status)


class App:
    """Routes and state of one server: the file, the live feed and the HTTP client for the stream's metrics."""

    def __init__(self, options: ServeOptions, clock: Clock | None = None):
        """Serve `options.db_path`; `clock` stamps the latency look-back (default: the wall clock)."""
        self.options, self.clock = options, clock or WallClock()
        self.db_path = Path(options.db_path)
        self.feed = LiveFeed(self.db_path, poll_s=options.poll_s, features=options.features, clock=self.clock)
        self.session: aiohttp.ClientSession | None = None

    def web_app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application()
        app.router.add_get("/", self.index)
        app.router.add_get("/api/series", self.series)
        app.router.add_get("/api/candles", self.candles)
        app.router.add_get("/api/live", self.live)
        app.router.add_get("/api/quality", self.quality)
        app.cleanup_ctx.append(self._background)
        app.on_shutdown.append(self._shutdown)
        return app

    async def _background(self, _app):
        """Run the live feed and hold the metrics client for the app's lifetime."""
        self.session = aiohttp.ClientSession()
        task = asyncio.create_task(self.feed.run())
        yield
        task.cancel()
        await self.session.close()

    async def _shutdown(self, _app) -> None:
        """End open event streams so that the server stops at once."""
        self.feed.close()

    async def _read(self, work: Callable):
        """Run `work(con)` on a short-lived read-only connection, off the event loop."""
        def job():
            with reading(self.db_path) as con:
                return work(con)
        return await asyncio.to_thread(job)

    async def _series_of(self, query) -> chart.Series:
        """The series named by ?exchange=&symbol=&timeframe= (exchange may be left out when the symbol is unique)."""
        symbol = query.get("symbol")
        if not symbol:
            raise ConfigError("symbol is required")
        tf = timeframes.normalize(query.get("timeframe") or "1m")
        found = await self._read(lambda con: chart.list_series(
            con, exchange=query.get("exchange") or None, symbols=(symbol,), timeframes_wanted=(tf,)))
        if not found:
            raise InputError(f"no {tf} candles for {symbol}", path=str(self.db_path))
        if len(found) > 1:
            raise ConfigError(f"{symbol} exists on several exchanges ({', '.join(s.exchange for s in found)}); pass exchange")
        return found[0]

    async def index(self, _request: web.Request) -> web.Response:
        """The page; it asks the API for series and data."""
        config = {"mode": "live", "timeframes": list(timeframes.SUPPORTED_TIMEFRAMES), "features": list(self.options.features),
                  "series": [], "initial": None, "initial_timeframe": "1m", "quality_every_ms": 5000}
        html = page.render(config, title=f"mdstream · {self.db_path.name}")
        return web.Response(text=html, content_type="text/html")

    async def series(self, _request: web.Request) -> web.Response:
        """Every series in the file."""
        try:
            found = await self._read(chart.list_series)
        except MdstreamError as exc:
            return _error(exc)
        return _json({"series": [{"key": s.key, "exchange": s.exchange, "symbol": s.symbol, "timeframe": s.timeframe,
                                  "tf_s": s.seconds} for s in found]})

    async def candles(self, request: web.Request) -> web.Response:
        """Candles of one series in [from, to), the newest `limit`."""
        try:
            series = await self._series_of(request.query)
            start, end = parse_time(request.query.get("from"), "from"), parse_time(request.query.get("to"), "to")
            limit = self._limit(request.query)
            frame = await self._read(lambda con: chart.load_candles(
                con, series, start=start, end=end, limit=limit, features=self.options.features))
        except MdstreamError as exc:
            return _error(exc)
        return _json(chart.payload(frame, series, self.options.features))

    @staticmethod
    def _limit(query) -> int:
        """?limit= within 1..MAX_LIMIT (default DEFAULT_LIMIT)."""
        text = query.get("limit") or str(DEFAULT_LIMIT)
        if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
            raise ConfigError(f"limit must be 1..{MAX_LIMIT}")
        return int(text)

    async def live(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: a snapshot of the series, then every change as the stream writes it."""
        response = web.StreamResponse(headers=SSE_HEADERS)
        await response.prepare(request)
        await response.write(b"retry: 1000\n\n")
        try:
            series = await self._series_of(request.query)
            start, limit = parse_time(request.query.get("from"), "from"), self._limit(request.query)
        except MdstreamError as exc:
            await self._send(response, "problem", {"error": str(exc)})
            return response
        queue = self.feed.subscribe(series)  # before the snapshot, so nothing written meanwhile is missed
        try:
            event, data = "resync", {}
            while event is not None:
                if event == "resync":
                    event, data = "snapshot", await self._read(lambda con: chart.payload(chart.load_candles(
                        con, series, start=start, limit=limit, features=self.options.features), series, self.options.features))
                await self._send(response, event, data)
                event, data = await self._next(queue, response)
        except MdstreamError as exc:
            await self._send(response, "problem", {"error": str(exc)})
        except ConnectionResetError:
            pass
        finally:
            self.feed.unsubscribe(series, queue)
        return response

    @staticmethod
    async def _next(queue: asyncio.Queue, response: web.StreamResponse) -> tuple:
        """The next feed event, writing a keep-alive comment every KEEPALIVE_S seconds meanwhile; (None, None) at shutdown."""
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), timeout=KEEPALIVE_S)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            return (None, None) if item is None else item

    @staticmethod
    async def _send(response: web.StreamResponse, event: str, data) -> None:
        """One server-sent event."""
        await response.write(b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n")

    async def quality(self, request: web.Request) -> web.Response:
        """The data-quality panel of one instrument: gaps by kind, latency, quarantine, feed status."""
        exchange, symbol = request.query.get("exchange"), request.query.get("symbol")
        if not exchange or not symbol:
            return _json({"error": "exchange and symbol are required"}, 400)
        now = self.clock.now()
        try:
            body = await self._read(lambda con: {
                "gaps": quality.gaps_by_kind(con, exchange, symbol), "latency": quality.latency(con, exchange, symbol, now),
                "quarantine": quality.quarantine(con)})
        except MdstreamError as exc:
            return _error(exc)
        feed = None
        if self.options.metrics_url and self.session is not None:
            feed = await quality.feed_status(self.session, self.options.metrics_url)
        return _json({**body, "feed": feed, "as_of": now})


async def serve(options: ServeOptions, announce: Callable[[str], None] = print, stop: asyncio.Event | None = None) -> None:
    """Bind, announce the URL and serve until `stop` is set (SIGINT or SIGTERM set it when not given)."""
    check_bind(options.host, options.allow_remote)
    with reading(options.db_path, wait_s=10.0):
        pass  # fail now, with a clear message, if the file is missing or not readable
    runner = web.AppRunner(App(options).web_app(), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, options.host, options.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in host else host
        announce(f"serving {options.db_path} read-only on http://{shown}:{port}/ (Ctrl-C to stop)")
        if stop is None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    except OSError as exc:
        raise ConfigError(f"cannot listen on {options.host}:{options.port}: {exc.strerror or exc}") from exc
    finally:
        await runner.cleanup()


def run(options: ServeOptions, announce: Callable[[str], None] = print) -> None:
    """serve() on a fresh event loop, until Ctrl-C or SIGTERM."""
    asyncio.run(serve(options, announce))
