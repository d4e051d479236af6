"""The engine's clocks with explicit, bounded roles.

Event time drives windows. A live feed adds the wall clock only to close windows while nothing arrives: the
watermark then runs on from the newest event by the wall time elapsed since it arrived, at most `max_quiet` past
it (unbounded while the feed is known down: those windows are feed anyway). A replay runs on event time alone:
its own clock is the position in the input."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Timing:
    """Newest event time, when it arrived, and the watermark (epoch us, never moving backwards)."""

    live: bool
    lateness_us: int
    max_quiet_us: int
    max_event: int | None = None
    arrival: int | None = None  # live: wall time the newest event was received
    mark: int | None = None  # the watermark reached so far

    def observe(self, max_event: int | None, received: int | None, now: int) -> None:
        """Take in the newest event time of admitted ticks and their latest receive time (capped at now)."""
        if max_event is None:
            return
        if self.max_event is None or max_event >= self.max_event:
            self.max_event = max_event
            self.arrival = min(received if received is not None else now, now)

    def watermark(self, now: int, *, outage: bool) -> int | None:
        """Windows ending at or before this may close (it never moves back): see `peek`."""
        mark = self.peek(now, outage=outage)
        if mark is not None:
            self.mark = mark
        return self.mark

    def peek(self, now: int, *, outage: bool) -> int | None:
        """The watermark at clock time `now`, without moving it: live, max_event + min(now - arrival, max_quiet)
        - lateness (no bound during an outage; now - lateness before the first event of an outage); replay,
        max(max_event, now) - lateness; never below the mark reached so far."""
        if self.live:
            if self.max_event is None:
                mark = now - self.lateness_us if outage else None
            else:
                quiet = max(0, now - (self.arrival if self.arrival is not None else now))
                if not outage:
                    quiet = min(quiet, self.max_quiet_us)
                mark = self.max_event + quiet - self.lateness_us
        else:
            latest = now if self.max_event is None else max(self.max_event, now)
            mark = latest - self.lateness_us
        if mark is None:
            return self.mark
        return mark if self.mark is None else max(self.mark, mark)

    def due_at(self, end: int, *, outage: bool) -> int | None:
        """Clock time (epoch us, the same clock `watermark` takes) at which a window ending at `end` closes if
        nothing arrives; None when only a new event can close it."""
        if not self.live:
            return end + self.lateness_us
        if self.max_event is None:
            return end + self.lateness_us if outage else None
        ahead = end + self.lateness_us - self.max_event
        if ahead > self.max_quiet_us and not outage:
            return None
        return (self.arrival if self.arrival is not None else self.max_event) + max(0, ahead)
