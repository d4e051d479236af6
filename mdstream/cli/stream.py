"""`mdstream stream`: the continuous job (thin: options -> library)."""

from __future__ import annotations

from pathlib import Path

import click

from ..contract import timeframes as tfm
from ..jobs.requests import STREAM_MODES as MODES
from ..jobs.requests import StreamRequest, default
from .edge import end_process, guarded
from .options import instrument_option, instruments_from, parse_symbols, sink_from, sink_options


def _default(name: str):
    """The default of StreamRequest field `name`: the request object holds the only defaults."""
    return default(StreamRequest, name)


SOURCES = ("binance", "binance-futures", "binance-delivery", "ccxt", "tardis-machine", "replay", "synthetic")


@click.command()
@click.option("--source", type=click.Choice(SOURCES), default=_default("source"), show_default=True,
              help="binance (spot), binance-futures (USD-M), binance-delivery (COIN-M) WebSocket, ccxt (other venues: "
                   "--exchange okx|bybit|coinbase|kraken|deribit|hyperliquid), tardis-machine, replay of files, or a "
                   "simulated market.")
@click.option("--symbols", help="Comma-separated symbols, e.g. BTCUSDT,ETHUSDT (live sources, synthetic).")
@click.option("--exchange", help="Exchange for ccxt (okx, bybit, bybit-spot, okex-swap, ...) or tardis-machine "
                                 "(e.g. binance-futures), or to label a replay.")
@click.option("--url", help="WebSocket URL override (e.g. ws://127.0.0.1:9000 for a local server); for ccxt, the "
                            "host every REST and WebSocket call goes to (e.g. http://127.0.0.1:9000).")
@click.option("--silence-timeout", type=click.FloatRange(min=0, min_open=True), default=_default("silence_timeout"),
              show_default=True,
              help="Live sources: seconds without any message before the feed counts as down and reconnects.")
@click.option("--max-feed-down", type=click.FloatRange(min=0), default=_default("max_feed_down"), show_default=True,
              help="Seconds a live feed may stay down before /healthz answers 503 (with the reason).")
@click.option("--input", "inputs", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Replay input: Tardis trades CSV(.gz) or a recorded WebSocket file; repeatable.")
@click.option("--speed", type=float, default=_default("speed"), show_default=True,
              help="Replay speed: 0 = as fast as possible, 1 = real time.")
@click.option("--mode", type=click.Choice(MODES), default=_default("mode"), show_default=True,
              help="Write candles, raw ticks, or both.")
@click.option("--timeframes", default=",".join(_default("timeframes")), show_default=True,
              help=f"Timeframes to build, of {', '.join(tfm.SUPPORTED_TIMEFRAMES)} (1M, a month, is refused).")
@click.option("--flush-interval", type=float, default=_default("flush_interval"), show_default=True,
              help="Seconds per micro-batch.")
@click.option("--max-rows", type=int, default=_default("max_rows"), show_default=True,
              help="Row cap of one micro-batch.")
@click.option("--lateness", type=float, default=_default("lateness"), show_default=True,
              help="Seconds a window waits for out-of-order trades after it ends.")
@click.option("--horizon", type=float, default=_default("horizon"), show_default=True,
              help="Seconds after emission a window still takes revisions; later trades are quarantined.")
@click.option("--max-skew", type=float, default=_default("max_skew"), show_default=True,
              help="Seconds a trade may be stamped ahead of the clock (a live feed's wall clock, a recording's "
                   "receive time); later ones are quarantined and never move the watermark.")
@click.option("--duration", type=float, help="Stop cleanly after this many seconds.")
@click.option("--metrics-port", type=int, help="Serve /metrics and /healthz on this port.")
@click.option("--metrics-host", envvar="MDSTREAM_METRICS_HOST", default=_default("metrics_host"), show_default=True,
              help="Address the metrics server binds to.")
@click.option("--checkpoint", type=click.Path(path_type=Path),
              help="Progress file (JSON), written after each durable flush: this run's accounting, the totals of "
                   "every run that used it, the watermark; a file of another job is refused.")
@click.option("--shard", help="INDEX/COUNT: only this shard's symbols (stable hashing).")
@click.option("--seed", type=int, default=_default("seed"), show_default=True, help="Seed of the synthetic market.")
@click.option("--quiet", is_flag=True, help="No line per candle (status and summary only).")
@click.option("--heal", type=click.BOOL, default=_default("heal"), show_default=True, metavar="on|off",
              help="Fill outages and the window holding the start from the venue's REST trade history (Binance "
                   "spot and USD-M; Deribit and Kraken "
                   "through --source ccxt) as late trades, and clear gap = feed where the fill is proven complete "
                   "(contiguous ids, Deribit's trade_seq, Kraken's trade_id).")
@click.option("--heal-url", help="REST base URL for --heal (e.g. http://127.0.0.1:9001 for a local mirror; "
                                 "--source ccxt defaults to --url).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default=_default("log_format"), show_default=True,
              help="json: one JSON object per line (candles, status, summary) for log collectors.")
@instrument_option
@sink_options
@guarded
def stream(**kw) -> None:
    """Run the continuous job: ticks -> micro-batches -> candles/features -> sink, until stopped.

    \b
    Example:
      mdstream stream --source synthetic --duration 30
      mdstream stream --source binance --symbols BTCUSDT,ETHUSDT --metrics-port 9108
      mdstream stream --source binance-delivery --symbols BTCUSD_PERP,ETHUSD_PERP
      mdstream stream --source ccxt --exchange okx --symbols BTC-USDT-SWAP,ETH/USDT:USDT
      mdstream stream --source replay --input spot_btcusdt_20240808.gz --speed 0
      mdstream stream --source binance-futures --symbols BTCUSDT --heal off
    """
    import asyncio

    from ..jobs.stream_app import run_stream

    sink_opts = sink_from(kw)
    request = StreamRequest(
        source=kw["source"], symbols=parse_symbols(kw["symbols"]), exchange=kw["exchange"], url=kw["url"],
        inputs=tuple(kw["inputs"]), speed=kw["speed"], mode=kw["mode"], timeframes=tfm.parse_list(kw["timeframes"]),
        flush_interval=kw["flush_interval"], max_rows=kw["max_rows"], lateness=kw["lateness"], horizon=kw["horizon"],
        max_skew=kw["max_skew"],
        duration=kw["duration"], metrics_port=kw["metrics_port"], metrics_host=kw["metrics_host"],
        checkpoint=kw["checkpoint"], shard=kw["shard"], seed=kw["seed"], quiet=kw["quiet"], log_format=kw["log_format"],
        silence_timeout=kw["silence_timeout"], max_feed_down=kw["max_feed_down"],
        instruments=instruments_from(kw, kw["exchange"]), heal=kw["heal"], heal_url=kw["heal_url"],
    )
    asyncio.run(run_stream(request, sink_opts))
    end_process()  # the input ended, --duration passed or a signal stopped it: the sink is closed, the server stopped


commands = [stream]
