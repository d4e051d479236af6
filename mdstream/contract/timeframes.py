"""The timeframe registry: every UTC-aligned timeframe, its width and aliases, and their arithmetic.

Adding a timeframe is one entry in REGISTRY: the Python window arithmetic, the SQL width table, the per-timeframe
views (sinks/sqlfiles.py renders them) and the chart all read it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from .dates import parse_day
from .errors import ConfigError

US_PER_SECOND = 1_000_000
US_PER_DAY = 86_400 * US_PER_SECOND


@dataclass(frozen=True)
class Timeframe:
    """One timeframe: canonical name, window width in microseconds, other spellings, built unless asked otherwise."""

    name: str
    width_us: int
    aliases: tuple[str, ...] = ()
    default: bool = True


# Ordered shortest first; each divides the next, so each can be derived exactly from the previous.
REGISTRY: tuple[Timeframe, ...] = (
    Timeframe("15s", 15 * US_PER_SECOND),
    Timeframe("1m", 60 * US_PER_SECOND, ("1min",)),
    Timeframe("5m", 300 * US_PER_SECOND, ("5min",)),
    Timeframe("15m", 900 * US_PER_SECOND, ("15min",)),
    Timeframe("1h", 3600 * US_PER_SECOND, ("60m", "60min"), default=False),
    Timeframe("4h", 4 * 3600 * US_PER_SECOND, ("240m",)),
    Timeframe("1d", US_PER_DAY, ("24h",)),
)
for _short, _long in zip(REGISTRY, REGISTRY[1:]):
    assert _long.width_us % _short.width_us == 0, f"{_short.name} must divide {_long.name}"
assert US_PER_DAY % REGISTRY[-1].width_us == 0, "every timeframe must divide a UTC day"

TIMEFRAME_US: dict[str, int] = {tf.name: tf.width_us for tf in REGISTRY}
SUPPORTED_TIMEFRAMES: tuple[str, ...] = tuple(TIMEFRAME_US)  # everything --timeframes accepts
ALL_TIMEFRAMES: tuple[str, ...] = tuple(tf.name for tf in REGISTRY if tf.default)  # built when none are named
ALIASES = {alias: tf.name for tf in REGISTRY for alias in tf.aliases}


def normalize(name: str) -> str:
    """Canonical timeframe name for `name` (aliases such as `24h` for `1d`; case-insensitive except `M`)."""
    key = name.strip()
    if key[-1:] == "M" or key.upper().endswith("MO") or key.lower().endswith(("mon", "month", "months", "w")):
        # To traders (and Binance klines) 1M is a month; reading it as a minute would be a quiet wrong answer.
        raise ConfigError(f"timeframe {name!r} is a month or a week, which mdstream does not build; "
                          f"choose from {', '.join(SUPPORTED_TIMEFRAMES)}")
    key = key.lower()
    key = ALIASES.get(key, key)
    if key not in TIMEFRAME_US:
        raise ConfigError(f"unknown timeframe {name!r}; choose from {', '.join(SUPPORTED_TIMEFRAMES)} (24h = 1d)")
    return key


def parse_list(text: str | None) -> tuple[str, ...]:
    """Comma-separated timeframes -> canonical names in shortest-first order, deduplicated (none: the defaults)."""
    if not text:
        return ALL_TIMEFRAMES
    wanted = {normalize(part) for part in text.split(",") if part.strip()}
    return tuple(tf for tf in SUPPORTED_TIMEFRAMES if tf in wanted)


def duration_us(name: str) -> int:
    """Length of one window of `name` in microseconds."""
    return TIMEFRAME_US[normalize(name)]


def duration_seconds(name: str) -> float:
    """Length of one window of `name` in seconds."""
    return duration_us(name) / US_PER_SECOND


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def epoch_us(when: datetime) -> int:
    """Microseconds since 1970-01-01 UTC of a timezone-aware datetime, exact (integer arithmetic, no float)."""
    return (when - _EPOCH) // timedelta(microseconds=1)


def day_bounds(day: str | date, name: str = "day") -> tuple[datetime, datetime]:
    """[midnight UTC, next midnight) of `day` ('YYYY-MM-DD' or a date); a bad value is a ConfigError naming `name`."""
    start_date = parse_day(day, name)
    start = datetime(start_date.year, start_date.month, start_date.day, tzinfo=timezone.utc)
    return start, start + timedelta(days=1)
