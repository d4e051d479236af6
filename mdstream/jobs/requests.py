"""What a backfill or a stream was asked to do: request objects whose field defaults are the only defaults (the CLI
reads its option defaults from here). Light on purpose: the command line imports it before any data library."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path

from ..contract import defaults as d
from ..contract.timeframes import ALL_TIMEFRAMES

STREAM_MODES = ("candles", "ticks", "both")  # what `mdstream stream --mode` writes


@dataclass(frozen=True)
class BackfillOptions:
    """What to backfill: Tardis days (exchange, symbols, [from, to)) or explicit input files."""

    exchange: str | None = None
    symbols: tuple[str, ...] = ()
    from_date: date | None = None
    to_date: date | None = None  # exclusive, as in tardis-dev
    inputs: tuple[Path, ...] = ()
    timeframes: tuple[str, ...] = ALL_TIMEFRAMES
    store_ticks: bool = False
    cache_dir: Path = Path("datasets")
    tardis_endpoint: str | None = None
    shard: tuple[int, int] | None = None
    download_timeout: float = 60.0  # seconds without a downloaded byte before a Tardis download is given up
    instruments: tuple = ()  # contract.instruments.Instrument overrides of the instrument metadata (--instrument)


@dataclass(frozen=True)
class StreamRequest:
    """Everything `mdstream stream` was asked to do."""

    source: str = "synthetic"
    symbols: tuple[str, ...] = ()
    exchange: str | None = None
    url: str | None = None
    inputs: tuple[Path, ...] = ()
    speed: float = 0.0
    mode: str = "candles"
    timeframes: tuple[str, ...] = ALL_TIMEFRAMES
    flush_interval: float = d.FLUSH_INTERVAL_S
    max_rows: int = d.MAX_ROWS
    lateness: float = d.LATENESS_S
    horizon: float = d.HORIZON_S
    max_skew: float = d.MAX_SKEW_S
    duration: float | None = None
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    checkpoint: Path | None = None
    shard: str | None = None
    seed: int = 0
    quiet: bool = False
    log_format: str = "text"
    silence_timeout: float = d.SILENCE_TIMEOUT_S
    max_feed_down: float = d.MAX_FEED_DOWN_S
    instruments: tuple = ()  # contract/instruments.Instrument overrides (--instrument)
    heal: bool = True  # fill outages from the venue's REST trade history where it can prove them complete
    heal_url: str | None = None  # REST base URL override (a local mirror or stand-in)


@dataclass(frozen=True)
class StreamOptions:
    """How the stream job runs (the engine and runner side of a StreamRequest)."""

    mode: str = "candles"
    timeframes: tuple[str, ...] = ALL_TIMEFRAMES
    lateness: float = d.LATENESS_S
    horizon: float = d.HORIZON_S
    duration: float | None = None  # wall seconds, then a clean stop
    commit_interval: float = 1.0  # wall seconds between sink flushes when nothing closed
    status_interval: float = 5.0
    checkpoint: Path | None = None
    warm_start: bool = True
    sink_name: str = "duckdb"  # label of the rows_written metric
    live: bool = True  # False: a replay, on event time alone
    max_skew: float = d.MAX_SKEW_S
    max_quiet: float = d.MAX_QUIET_S


def default(request: type, name: str):
    """The default of field `name` of the dataclass `request` (for CLI option defaults)."""
    for spec in fields(request):
        if spec.name == name:
            return spec.default
    raise KeyError(f"{request.__name__} has no field {name!r}")
