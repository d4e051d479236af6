"""Live console output of the stream job: candle lines, status lines and a final summary (text or JSON)."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import IO, Any

import orjson
import polars as pl
from rich.console import Console as RichConsole
from rich.table import Table
from rich.text import Text

from ..contract import columns as c
from ..contract.errors import ConfigError

LOG_FORMATS = ("text", "json")
CHANGE_PCT = "change_pct"
# Status keys shown first and how they are labelled; any other key follows as key=value.
STATUS_FIELDS = (
    ("ticks_per_s", "ticks/s"), ("ticks", "ticks"), ("batches", "batches"), ("rows_written", "rows"),
    ("queue_depth", "queue"), ("quarantined", "quarantined"), ("reconnects", "reconnects"),
    ("gaps", "gaps"), ("late_trades", "late"), ("sink", "sink"),
)
LINE_COLUMNS = (
    c.EXCHANGE, c.SYMBOL, c.TIMEFRAME, c.TIMESTAMP_IN, c.OPEN, c.HIGH, c.LOW, c.CLOSE, c.VOLUME,
    c.TRADES, CHANGE_PCT, c.LATENCY_MS, c.GAP, c.REVISION,
)


def change_pct() -> pl.Expr:
    """Candle change in percent: (close / open - 1) * 100; null when open is null or 0."""
    return pl.when(pl.col(c.OPEN) != 0).then((pl.col(c.CLOSE) / pl.col(c.OPEN) - 1.0) * 100.0).alias(CHANGE_PCT)


def number(value: float | None, decimals: int = 10) -> str:
    """Fixed-point text without exponent or trailing zeros (0.00001234, 9700.5); "-" for null."""
    if value is None:
        return "-"
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _json_default(value: Any) -> Any:
    """orjson fallback for values it does not know (e.g. Decimal): their string form."""
    return str(value)


class Console:
    """Candle, status and summary output for humans (rich text) or machines (one JSON object per line)."""

    def __init__(self, quiet: bool = False, log_format: str = "text", file: IO[str] | None = None):
        """quiet silences candle lines; log_format is text or json; file defaults to stdout."""
        if log_format not in LOG_FORMATS:
            raise ConfigError(f"--log-format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
        self.quiet, self.log_format = quiet, log_format
        self.file = file if file is not None else sys.stdout
        self._rich = RichConsole(file=self.file, highlight=False, soft_wrap=True, emoji=False)

    def candles(self, df: pl.DataFrame) -> None:
        """One line per candle in `df`, ordered by window start, symbol and timeframe."""
        if self.quiet or df.height == 0:
            return
        with_change = df.with_columns(change_pct())
        present = [name for name in LINE_COLUMNS if name in with_change.columns]
        rows = with_change.select(present).sort(
            [name for name in (c.TIMESTAMP_IN, c.EXCHANGE, c.SYMBOL, c.TIMEFRAME) if name in present]
        )
        for row in rows.iter_rows(named=True):
            if self.log_format == "json":
                self._json({"event": "candle", **row})
            else:
                self._rich.print(self._candle_text(row))

    def status(self, stats: dict[str, Any]) -> None:
        """One status line: ticks/s, batches, rows written, queue depth, sink summary, then any extra keys."""
        if self.log_format == "json":
            self._json({"event": "status", **stats})
            return
        parts = [f"{label} {self._stat(stats[key])}" for key, label in STATUS_FIELDS if key in stats]
        known = {key for key, _ in STATUS_FIELDS}
        parts += [f"{key}={self._stat(value)}" for key, value in stats.items() if key not in known]
        self._rich.print(Text.assemble(("status ", "bold cyan"), (" | ".join(parts), "cyan")))

    def summary(self, stats: dict[str, Any]) -> None:
        """The end-of-run summary: a two-column table (text) or one JSON object."""
        if self.log_format == "json":
            self._json({"event": "summary", **stats})
            return
        table = Table(title="mdstream summary", show_header=False, title_justify="left")
        table.add_column("metric", style="bold")
        table.add_column("value", justify="right")
        for key, value in stats.items():
            table.add_row(str(key), self._stat(value))
        self._rich.print(table)

    def message(self, text: str, level: str = "info", **fields: Any) -> None:
        """A free-form log line (reconnects, warnings) in the console's format."""
        if self.log_format == "json":
            self._json({"event": "log", "level": level, "message": text, **fields})
            return
        style = {"warning": "yellow", "error": "bold red"}.get(level, "")
        extra = " ".join(f"{k}={self._stat(v)}" for k, v in fields.items())
        self._rich.print(Text(f"{level} {text}" + (f" {extra}" if extra else ""), style=style))

    def _json(self, payload: dict[str, Any]) -> None:
        """Write one JSON object and a newline (timestamps as ISO 8601 UTC)."""
        self.file.write(orjson.dumps(payload, default=_json_default, option=orjson.OPT_UTC_Z).decode() + "\n")
        self.file.flush()

    @staticmethod
    def _stat(value: Any) -> str:
        """A status value as text: floats with at most 1 decimal, ints with thousands separators."""
        if isinstance(value, bool) or value is None:
            return str(value)
        if isinstance(value, float):
            return f"{value:,.0f}" if value.is_integer() else f"{value:,.1f}"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    @staticmethod
    def _candle_text(row: dict[str, Any]) -> Text:
        """A rich Text line for one candle row."""
        start: datetime | None = row.get(c.TIMESTAMP_IN)
        when = start.strftime("%Y-%m-%d %H:%M:%S") if start is not None else "-"
        change = row.get(CHANGE_PCT)
        colour = "green" if (change or 0) > 0 else "red" if (change or 0) < 0 else "white"
        line = Text.assemble(
            (when, "dim"), " ", (f"{row.get(c.SYMBOL, '-'):<10}", "bold"), " ", f"{row.get(c.TIMEFRAME, '-'):>3}",
            "  O ", number(row.get(c.OPEN)), " H ", number(row.get(c.HIGH)), " L ", number(row.get(c.LOW)),
            " C ", (number(row.get(c.CLOSE)), colour), "  V ", number(row.get(c.VOLUME), 6),
            "  n ", str(row.get(c.TRADES, "-")),
            "  ", ("-" if change is None else f"{change:+.3f}%", colour),
            "  ", ("-" if row.get(c.LATENCY_MS) is None else f"{row[c.LATENCY_MS]:.0f}ms", "dim"),
        )
        gap = row.get(c.GAP)
        if gap == c.GAP_FEED:
            line.append("  GAP:feed", style="bold red")
        elif gap == c.GAP_QUIET:
            line.append("  quiet", style="dim")
        if row.get(c.REVISION):
            line.append(f"  rev {row[c.REVISION]}", style="yellow")
        return line
