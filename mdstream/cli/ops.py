"""Operator commands of the CLI: `mdstream chart`."""

from __future__ import annotations

from datetime import datetime

import click

from ..contract.errors import MdstreamError
from .options import duckdb_option

DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M"]


@click.command("chart")
@click.option("--symbol", required=True, help="Exchange symbol, e.g. BTCUSDT.")
@click.option("--timeframe", default="1m", show_default=True, help="15s, 1m, 5m, 15m, 4h or 1d.")
@click.option("--exchange", default=None, help="Exchange id; needed only when the symbol exists on several.")
@duckdb_option
@click.option("--from", "start", type=click.DateTime(DATE_FORMATS), default=None, help="First window start (UTC, inclusive).")
@click.option("--to", "end", type=click.DateTime(DATE_FORMATS), default=None, help="Last window start bound (UTC, exclusive).")
@click.option("--limit", default=2000, show_default=True, type=click.IntRange(min=1), help="At most this many (newest) candles.")
@click.option("--output", default="chart.html", show_default=True, type=click.Path(dir_okay=False), help="HTML file to write.")
def chart(symbol: str, timeframe: str, exchange: str | None, duckdb_path: str, start: datetime | None,
          end: datetime | None, limit: int, output: str) -> None:
    """Write a self-contained HTML candlestick chart (volume, VWAP, Bollinger, gap shading) that opens offline.

    \b
    Example:
      mdstream chart --symbol BTCUSDT --timeframe 1m --from 2024-01-01 --to 2024-01-02 --output btc.html
    """
    from ..ops import chart as chart_module

    try:
        drawn = chart_module.write_chart(
            duckdb_path, symbol, timeframe, output, exchange=exchange,
            start=chart_module.as_utc(start), end=chart_module.as_utc(end), limit=limit,
        )
    except MdstreamError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {output}: {drawn} {timeframe} candles of {symbol}")


commands = [chart]
