"""The six UTC-aligned timeframes and their arithmetic."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from .errors import ConfigError

US_PER_SECOND = 1_000_000
US_PER_DAY = 86_400 * US_PER_SECOND

# Ordered shortest first; each divides the next, so each can be derived exactly from the previous.
TIMEFRAME_US: dict[str, int] = {
    "15s": 15 * US_PER_SECOND,
    "1m": 60 * US_PER_SECOND,
    "5m": 300 * US_PER_SECOND,
    "15m": 900 * US_PER_SECOND,
    "4h": 4 * 3600 * US_PER_SECOND,
    "1d": 86400 * US_PER_SECOND,
}
ALL_TIMEFRAMES: tuple[str, ...] = tuple(TIMEFRAME_US)
ALIASES = {"24h": "1d", "1min": "1m", "5min": "5m", "15min": "15m"}


def normalize(name: str) -> str:
    """Canonical timeframe name for `name` (accepts `24h` for `1d`)."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in TIMEFRAME_US:
        raise ConfigError(f"unknown timeframe {name!r}; choose from {', '.join(ALL_TIMEFRAMES)} (24h = 1d)")
    return key


def parse_list(text: str | None) -> tuple[str, ...]:
    """Comma-separated timeframes -> canonical names in shortest-first order, deduplicated."""
    if not text:
        return ALL_TIMEFRAMES
    wanted = {normalize(part) for part in text.split(",") if part.strip()}
    return tuple(tf for tf in ALL_TIMEFRAMES if tf in wanted)


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
    try:
        start_date = day if isinstance(day, date) else date.fromisoformat(str(day))
    except ValueError as exc:
        raise ConfigError(f"{name} must be a date YYYY-MM-DD, got {day!r}") from exc
    start = datetime(start_date.year, start_date.month, start_date.day, tzinfo=timezone.utc)
    return start, start + timedelta(days=1)
