"""Wiring of the stream job: build the source, sink, clock, console and metrics a request asks for, then run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..contract.clock import WallClock
from ..contract.errors import ConfigError
from ..sinks.factory import SinkOptions, open_sink
from .heal import Healer
from .requests import StreamRequest
from .stream import StreamOptions, StreamRunner


def build_source(req: StreamRequest):
    """(source, clock) for the request; a replay drives its own clock, live sources use the wall clock."""
    symbols = req.symbols
    if req.shard:
        from .shard import parse_shard, select_symbols

        symbols = tuple(select_symbols(symbols, *parse_shard(req.shard)))
        if not symbols:
            raise ConfigError(f"shard {req.shard} holds none of the symbols {', '.join(req.symbols)}")
    batching: dict[str, Any] = {"flush_interval": req.flush_interval, "max_rows": req.max_rows}
    if req.source in ("binance", "binance-futures", "binance-delivery"):
        from ..sources.binance import BinanceSource

        if not symbols:
            raise ConfigError(f"--source {req.source} needs --symbols")
        return BinanceSource(symbols, market=req.source, url=req.url, silence_timeout=req.silence_timeout,
                             **batching), WallClock()
    if req.source == "ccxt":
        from ..sources.ccxt_source import CcxtSource

        if not (req.exchange and symbols):
            raise ConfigError("--source ccxt needs --exchange (e.g. okx, bybit) and --symbols")
        return CcxtSource(req.exchange, symbols, url=req.url, silence_timeout=req.silence_timeout,
                          **batching), WallClock()
    if req.source == "tardis-machine":
        from ..sources.tardis_machine import TardisMachineSource

        if not (req.exchange and symbols):
            raise ConfigError("--source tardis-machine needs --exchange and --symbols")
        return TardisMachineSource(req.exchange, symbols, url=req.url, silence_timeout=req.silence_timeout,
                                   **batching), WallClock()
    if req.source == "replay":
        from ..sources.replay import ReplaySource

        if not req.inputs:
            raise ConfigError("--source replay needs --input FILE (repeatable)")
        source = ReplaySource(list(req.inputs), speed=req.speed, exchange=req.exchange, **batching)
        return source, source.clock
    if req.source == "synthetic":
        from ..sources.synthetic import SyntheticSource

        return SyntheticSource(symbols or ("BTCUSDT", "ETHUSDT", "SOLUSDT"), seed=req.seed, **batching), WallClock()
    raise ConfigError(f"unknown source {req.source!r}")


def build_healer(req: StreamRequest, clock, metrics) -> Healer | None:
    """The REST gap filler of the request's venue, or None: Binance spot and USD-M (trade ids are consecutive),
    and through ccxt Deribit (trade_seq is consecutive per instrument) and Kraken spot (trade_id is, per pair):
    each heals outages and the window holding the job's start."""
    if not req.heal:
        return None
    if req.source == "ccxt" and req.exchange:
        from ..sources.ccxt_markets import venue_of

        venue = venue_of(req.exchange)[0]
        # a local stand-in serves REST and WebSocket on one host: --url, unless --heal-url names another
        base_url = req.heal_url or req.url
        if venue == "kraken":
            from ..contract.timeframes import epoch_us
            from ..sources.heal_kraken import fill_kraken_gap, fill_kraken_since

            async def fetch_from(exchange: str, symbol: str, last_id: int, next_id: int, start: datetime):
                """The trades between two trade_ids, read from the time of the last one seen, stamped as received
                now."""
                return await fill_kraken_gap(exchange, symbol, last_id, next_id, now=clock.now(),
                                             since_ms=epoch_us(start) // 1000, base_url=base_url)

            async def id_since(exchange: str, symbol: str, ids: tuple[str, ...], at, start_from):
                """The trades from a window start up to the feed's first trade_id, stamped as received now."""
                return await fill_kraken_since(exchange, symbol, ids, at, start_from, now=clock.now(), base_url=base_url)

            return Healer(fetch_from=fetch_from, since=id_since, on_result=metrics.healed)
        if venue != "deribit":
            return None
        from ..sources.heal_ccxt import fill_deribit_gap, fill_deribit_since

        async def fetch_seq(exchange: str, symbol: str, last_seq: int, next_seq: int):
            """The trades between two sequence numbers, stamped as received now."""
            return await fill_deribit_gap(exchange, symbol, last_seq, next_seq, now=clock.now(), base_url=base_url)

        async def seq_since(exchange: str, symbol: str, ids: tuple[str, ...], at, start_from):
            """The trades from a window start up to the feed's first trades, stamped as received now."""
            return await fill_deribit_since(exchange, symbol, ids, at, start_from, now=clock.now(), base_url=base_url)

        return Healer(fetch_seq, since=seq_since, on_result=metrics.healed)
    if req.source not in ("binance", "binance-futures"):
        return None
    from ..sources.heal import fill_binance_gap, fill_binance_since

    async def fetch(exchange: str, symbol: str, last_id: int, next_id: int):
        """The trades between two ids, stamped as received now."""
        return await fill_binance_gap(exchange, symbol, last_id, next_id, now=clock.now(), base_url=req.heal_url)

    async def since(exchange: str, symbol: str, ids: tuple[str, ...], at, start_from):
        """The trades from a window start up to the feed's first trade id, stamped as received now."""
        first = min(int(i) for i in ids)  # Binance trade ids are integers (the source quarantines others)
        return await fill_binance_since(exchange, symbol, first, start_from, now=clock.now(), base_url=req.heal_url)

    return Healer(fetch, since=since, on_result=metrics.healed)


async def run_stream(req: StreamRequest, sink_opts: SinkOptions):
    """Build everything, run the job until it ends or is stopped, and release every resource."""
    from ..observe.console import Console
    from ..observe.metrics import BatchHealth, StreamMetrics
    from ..observe.metrics_http import start_metrics_server

    source, clock = build_source(req)
    console = Console(quiet=req.quiet, log_format=req.log_format)
    metrics = StreamMetrics(clock=clock)
    feed = getattr(source, "status", None)  # the source's feed state and accounting, read when scraped
    if feed is not None:
        metrics.watch(feed)
    health = BatchHealth(WallClock(), max_batch_age_s=max(30.0, 10 * req.flush_interval), feed=feed,
                         max_feed_down_s=req.max_feed_down)
    server = None
    if req.metrics_port is not None:
        server = start_metrics_server(req.metrics_port, host=req.metrics_host, health=health, registry=metrics.registry)
        console.message(f"metrics on {server.url}/metrics, health on {server.url}/healthz")
    sink = open_sink(sink_opts, mode="stream")
    opts = StreamOptions(mode=req.mode, timeframes=req.timeframes, lateness=req.lateness, horizon=req.horizon,
                         duration=req.duration, checkpoint=req.checkpoint, sink_name=sink_opts.kind,
                         live=req.source != "replay", max_skew=req.max_skew)
    from ..inputs.instruments import InstrumentBook

    book = InstrumentBook(req.instruments)
    book.learn(getattr(source, "instruments", ()))  # what a source read from its venue (ccxt's markets)
    try:
        return await StreamRunner(source, sink, clock, opts, console=console, metrics=metrics, health=health,
                                  instruments=book, healer=build_healer(req, clock, metrics)).run()
    finally:
        sink.close()
        if server is not None:
            server.stop()
