"""Clocks are passed in, never read implicitly, so tests and replays can drive time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    """Something that tells the current time (UTC)."""

    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""


class WallClock:
    """The machine's clock, for live sources."""

    def now(self) -> datetime:
        """datetime.now(UTC)."""
        return datetime.now(timezone.utc)


class ManualClock:
    """A clock tests and replays move by hand."""

    def __init__(self, start: datetime):
        self._now = start

    def now(self) -> datetime:
        """The time last set."""
        return self._now

    def set(self, when: datetime) -> None:
        """Move to `when` (never backwards)."""
        self._now = max(self._now, when)

    def advance(self, seconds: float) -> None:
        """Move forward by `seconds`."""
        self._now += timedelta(seconds=seconds)
