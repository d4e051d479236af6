"""What a backfill was asked to do: one request object whose field defaults are the only defaults (the CLI
reads its option defaults from here). Light on purpose: the command line imports it before any data library."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path

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


def default(request: type, name: str):
    """The default of field `name` of the dataclass `request` (for CLI option defaults)."""
    for spec in fields(request):
        if spec.name == name:
            return spec.default
    raise KeyError(f"{request.__name__} has no field {name!r}")
