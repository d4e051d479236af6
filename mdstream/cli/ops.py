"""Operator commands of the CLI: `mdstream chart` and `mdstream serve`."""

from __future__ import annotations

import sys
from datetime import datetime

import click

from ..contract import timeframes as tfm
from ..contract.defaults import SERVE_POLL_S
from ..contract.errors import MdstreamError
from ..ops.legend import LEGEND_FEATURES
from .options import csv_list, duckdb_option, time_callback


@click.command("chart")
@click.option("--symbol", "symbols", default=None,
              help="Symbol(s) to include, comma-separated, e.g. BTCUSDT,ETHUSDT; the first is shown first. Default: all.")
@click.option("--timeframe", default="1m", show_default=True, help="Timeframe shown first (the page switches between all).")
@click.option("--timeframes", default=None,
              help=f"Timeframes to include (default: all of {', '.join(tfm.SUPPORTED_TIMEFRAMES)}).")
@click.option("--exchange", default=None, help="Only this exchange (a symbol on several exchanges is a series per exchange).")
@duckdb_option
@click.option("--from", "start", callback=time_callback, help="First window start, YYYY-MM-DD[THH:MM[:SS]] (UTC, inclusive).")
@click.option("--to", "end", callback=time_callback, help="Last window start bound, YYYY-MM-DD[THH:MM[:SS]] (UTC, exclusive).")
@click.option("--limit", default=2000, show_default=True, type=click.IntRange(min=1),
              help="At most this many (newest) candles per series.")
@click.option("--features", default=None, help=f"Features in the crosshair legend (default: {','.join(LEGEND_FEATURES)}).")
@click.option("--output", default="chart.html", show_default=True, type=click.Path(dir_okay=False), help="HTML file to write.")
def chart(symbols: str | None, timeframe: str, timeframes: str | None, exchange: str | None, duckdb_path: str,
          start: datetime | None, end: datetime | None, limit: int, features: str | None, output: str) -> None:
    """Write one interactive HTML chart file (lightweight-charts, inline: it opens offline): candles, volume, session
    VWAP, Bollinger bands, feed/quiet gap shading, revision markers, a crosshair legend with OHLCV and features,
    and a symbol and timeframe switch.

    \b
    Example:
      mdstream chart --symbol BTCUSDT --timeframe 1m --from 2024-01-01 --to 2024-01-02 --output btc.html
    """
    from ..ops import chart as chart_module

    wanted = csv_list(symbols)
    try:
        count, drawn = chart_module.write_chart(
            duckdb_path, output, symbols=wanted, timeframe=timeframe,
            timeframes_wanted=tfm.parse_list(timeframes) if timeframes else (), exchange=exchange,
            start=chart_module.as_utc(start), end=chart_module.as_utc(end), limit=limit,
            features=chart_module.features_list(features),
        )
    except MdstreamError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {output}: {count} series, {drawn} candles")


@click.command("serve")
@duckdb_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; beyond loopback needs --allow-remote.")
@click.option("--port", default=8321, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free port).")
@click.option("--allow-remote", is_flag=True, help="Allow binding a non-loopback address (the page has no authentication).")
@click.option("--metrics-url", default=None, help="A running stream's metrics server, e.g. http://127.0.0.1:9108 (feed status).")
@click.option("--poll", default=SERVE_POLL_S, show_default=True, type=click.FloatRange(min=0.02),
              help="Seconds between checks for new candles.")
def serve(duckdb_path: str, host: str, port: int, allow_remote: bool, metrics_url: str | None, poll: float) -> None:
    """Serve a live chart of the DuckDB file (read-only; works while a stream writes it) with a data-quality panel.

    Pages follow the stream as candles close; links carry the series and window range, e.g.
    /?symbol=BTCUSDT&timeframe=1m&from=2024-01-01T00:00&to=2024-01-02.

    \b
    Example:
      mdstream serve --duckdb mdstream.duckdb --metrics-url http://127.0.0.1:9108
    """
    from ..ops.serve import ServeOptions, run

    run(ServeOptions(db_path=duckdb_path, host=host, port=port, allow_remote=allow_remote,
                     metrics_url=metrics_url, poll_s=poll), announce=_announce)


def _announce(message: str) -> None:
    """Print `message` at once (the URL line is read by scripts while the server runs)."""
    click.echo(message)
    sys.stdout.flush()


commands = [chart, serve]
