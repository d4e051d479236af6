"""Days and times given by a user (options, query parameters, file names) parsed one way, with one error form."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone

from .errors import ConfigError

DAY_FORM = "YYYY-MM-DD"
TIME_FORM = "YYYY-MM-DD[THH:MM[:SS[.ffffff]]][+HH:MM] (UTC unless an offset is given)"
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
# a day, then optionally a time of day (T or a space) with optional fraction and a Z or +HH:MM offset
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?)?")


def as_utc(value: datetime) -> datetime:
    """`value` as an aware UTC datetime (a naive one is taken to be UTC)."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def parse_day(value: str | date, name: str = "day") -> date:
    """A calendar day from a date or 'YYYY-MM-DD' text; anything else is a ConfigError naming `name`."""
    if isinstance(value, datetime):
        raise ConfigError(f"{value!r} is not a day for {name}: expected {DAY_FORM}")
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        if _DAY.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise ConfigError(f"{value!r} is not a day for {name}: expected {DAY_FORM}")


def parse_time(value: str | datetime, name: str = "time", *, epoch_seconds: bool = False) -> datetime:
    """An aware UTC datetime from a datetime or ISO 8601 text (naive = UTC; a bare day is its midnight), or from
    whole epoch seconds when `epoch_seconds`; anything else is a ConfigError naming `name` and the form."""
    if isinstance(value, datetime):
        return as_utc(value)
    text = str(value).strip()
    form = f"epoch seconds or {TIME_FORM}" if epoch_seconds else TIME_FORM
    try:
        if epoch_seconds and text.isdigit():
            return datetime.fromtimestamp(int(text), tz=timezone.utc)
        if _TIME.fullmatch(text):
            return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except (ValueError, OverflowError, OSError):
        pass
    raise ConfigError(f"{value!r} is not a time for {name}: expected {form}")
