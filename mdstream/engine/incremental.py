"""The stream engine: the core fold with the stream's own concerns around it (admission, dedupe, retention,
revision numbers, the watermark). Batch in; closed windows, revisions and quarantine rows out; bounded state."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import polars as pl

from ..contract import columns as c
from ..contract import defaults as d
from ..contract import timeframes as tfm
from ..contract.feed import FeedGap
from ..contract.schema import CANDLE_SCHEMA, QUARANTINE_SCHEMA, TICK_SCHEMA, TS, conform
from ..kernel import gaps as gp
from ..kernel.grid import stamp
from .admission import Band, screen
from .ahead import Prepared, still_valid
from .core import REEMIT, Spec, fold
from .frames import cursor_marks, gaps_frame, healed_windows, late_ticks, merge_gaps, reopened
from .ledger import Ledger
from .output import NEVER, EngineOutput, dt_of, first_us, us_of
from .state import NEXT, SeriesState, state_from_candles, tail_rows
from .store import SEQ as STORE_SEQ
from .store import TickStore
from .store import W as STORE_W
from .timing import Timing

GAP_RESTART = "restart"
_NO_CANDLES = pl.DataFrame(schema=CANDLE_SCHEMA)
_NO_LATE = pl.DataFrame(schema=QUARANTINE_SCHEMA)
_TICK_POLARS_SCHEMA = pl.DataFrame(schema=TICK_SCHEMA).schema
_US = timedelta(microseconds=1)
# the stream's defaults (contract/defaults.py, in seconds) as the engine takes them
_LATENESS, _HORIZON, _SKEW, _QUIET = (timedelta(seconds=s) for s in (d.LATENESS_S, d.HORIZON_S, d.MAX_SKEW_S,
                                                                        d.MAX_QUIET_S))


class CandleEngine:
    """Open windows per (exchange, symbol, timeframe); `step` folds in a batch and emits what the watermark
    closed. live=True: a live feed (the wall clock closes windows on a quiet feed, within bounds; ticks are
    judged against it); live=False: a replay (event time alone; `now` is the replay's own clock)."""

    def __init__(self, timeframes: Sequence[str] = tfm.ALL_TIMEFRAMES, *, lateness: timedelta = _LATENESS,
                 horizon: timedelta = _HORIZON, live: bool = True, max_skew: timedelta = _SKEW,
                 max_quiet: timedelta = _QUIET, max_span: timedelta = timedelta(days=1),
                 instruments: pl.DataFrame | None = None, ahead: timedelta = timedelta(0)):
        self.lateness_us, self.horizon_us = lateness // _US, horizon // _US
        base = tuple(sorted({tfm.normalize(t) for t in timeframes}, key=tfm.duration_us))
        self.spec = Spec(base, tail_rows(self.horizon_us + self.lateness_us, tfm.duration_us(base[0])), max_span // _US)
        self.timeframes = self.spec.timeframes
        self.base_us = tfm.duration_us(self.spec.base)
        self.live = live
        # Kind and contract size per series (contract/instruments.INSTRUMENT_SCHEMA); unlisted series are linear.
        self.instruments = instruments
        self.band = Band(live, self.horizon_us, max_skew // _US)
        self.timing = Timing(live, self.lateness_us, max_quiet // _US)
        self.state = SeriesState.empty()
        self.store = TickStore(self.base_us)
        self.ledger = Ledger()
        self._pending: list[pl.DataFrame] = []  # accepted ticks not folded in yet
        self._pending_min: int | None = None
        self._changed: pl.DataFrame | None = None  # series whose emitted windows a new gap reaches
        self._due: int = NEVER  # the earliest window end due (epoch us), kept by _refresh
        self._resume: pl.DataFrame | None = None  # after a warm start: where the stored windows end, per series
        # live: fold this long before a window is due and emit the result when it is (engine/ahead.py)
        self.ahead_us = ahead // _US if live else 0
        self._prepared: Prepared | None = None
        self._tried: int | None = None  # the due instant a fold ahead was last attempted for
        self._epoch = 0  # counts changes of the gaps: a fold ahead is only good for the epoch it saw
        self._refresh()

    # -- public -------------------------------------------------------------------------------------------
    @property
    def max_event(self) -> datetime | None:
        """The newest event time admitted."""
        return None if self.timing.max_event is None else dt_of(self.timing.max_event)

    def warm(self, candles: pl.DataFrame, *, restarted_at: datetime | None = None) -> None:
        """Resume from candles read back from the sink: the grid continues after the newest stored window, features
        and day totals continue, a longer window left open is rebuilt from the stored shorter ones; from the end of
        the stored windows to `restarted_at` nothing is known (gap = feed)."""
        state = state_from_candles(candles, self.timeframes, tail_rows=self.spec.tail_rows)
        if state.cursor.height == 0:
            return
        self._epoch += 1
        ends = state.cursor.group_by(c.EXCHANGE, c.SYMBOL).agg(pl.col(NEXT).max().dt.epoch("us").alias("_resume"))
        self._resume = ends
        self.state = state
        if restarted_at is not None:
            self.add_gaps(ends.filter(pl.col("_resume") < us_of(restarted_at)).select(
                c.EXCHANGE, c.SYMBOL, pl.col("_resume").cast(TS).alias(gp.GAP_START),
                pl.lit(restarted_at).cast(TS).alias(gp.GAP_END), pl.lit(GAP_RESTART).alias(gp.GAP_REASON)))
        self._refresh()

    def add_gaps(self, gaps: pl.DataFrame | Sequence[FeedGap]) -> None:
        """Remember intervals of missing data; every window they overlap is emitted (or emitted again) as feed."""
        merged, fresh = merge_gaps(self.state.gaps, gaps)
        self.state = self.state.evolve(gaps=merged)
        self._epoch += 1
        self._reopen(fresh)

    def heal(self, gaps: pl.DataFrame | Sequence[FeedGap], keep: Sequence[FeedGap] = ()) -> int:
        """Forget feed gaps a fill proved complete (matched on exchange, symbol, start; give the fill's trades to
        `step` with or before this), `keep` taking their place (a narrower gap that stays): the emitted windows
        they reached, within the revision horizon, are emitted again. Returns how many windows it made whole."""
        healed = gaps_frame(gaps)
        key = [c.EXCHANGE, c.SYMBOL, gp.GAP_START]
        found = self.state.gaps.join(healed.select(key), on=key, how="semi", nulls_equal=True)
        if found.height == 0:
            return 0
        rest = self.state.gaps.join(found.select(key), on=key, how="anti", nulls_equal=True)
        self.state = self.state.evolve(gaps=merge_gaps(rest, keep)[0] if keep else rest)
        self._epoch += 1
        self._reopen(found)
        self._refresh()
        return healed_windows(found, self.state.gaps, self.timeframes)

    def _reopen(self, fresh: pl.DataFrame) -> None:
        """Queue the series whose emitted windows a new (or healed) gap reaches, to be emitted again from it."""
        changed = reopened(fresh, self.state.cursor, self._floor())
        if changed is not None and changed.height and self._resume is not None:
            # Windows an earlier run wrote are not this run's to revise.
            changed = changed.join(self._resume, on=[c.EXCHANGE, c.SYMBOL], how="left").select(
                c.EXCHANGE, c.SYMBOL, pl.max_horizontal("_changed", "_resume").alias("_changed"))
        if changed is not None and changed.height:
            both = changed if self._changed is None else pl.concat([self._changed, changed])
            self._changed = both.group_by(c.EXCHANGE, c.SYMBOL).agg(pl.col("_changed").min())
        self._outage = self.state.gaps.get_column(gp.GAP_END).null_count() > 0

    def admit(self, ticks: pl.DataFrame, *, now: datetime) -> EngineOutput:
        """Admission alone (a job that stores raw ticks only): quarantine what is implausible or too late, drop
        repeats; the accepted ticks come back in `ticks`, nothing is folded."""
        out = self._admit(ticks, now)
        self._pending, self._pending_min = [], None
        floor = self._floor()
        if floor is not None:
            self.store.prune(floor)
        return out

    def step(self, ticks: pl.DataFrame, *, now: datetime, final: bool = False) -> EngineOutput:
        """Fold in `ticks` (received by `now`), then emit every window the watermark passed (at the end of the
        input, `final`: every window up to the one holding the newest event, that one marked feed), and again
        every emitted window the ticks or new gaps changed."""
        out = self._admit(ticks, now)
        if self._prepared is not None:
            self._settle(now, out)
        mark = self.timing.watermark(us_of(now), outage=self._outage)
        if not (final or self._changed is not None or self._revising() or (mark is not None and self._due <= mark)):
            if self.ahead_us and self._prepared is None:
                self._prepare(us_of(now))
            return out  # nothing closes and nothing was revised: the windows are folded when something does
        return self._fold(mark, now, final, out)

    def _admit(self, ticks: pl.DataFrame, now: datetime) -> EngineOutput:
        """Screen, dedupe and queue one batch; the output carries what was accepted and what was not."""
        if ticks.height == 0:
            return EngineOutput(_NO_CANDLES, _NO_LATE, ticks=None)
        if ticks.schema != _TICK_POLARS_SCHEMA:
            ticks = conform(ticks, TICK_SCHEMA)
        now_us = us_of(now)
        screened = screen(ticks, self.band, now_us=now_us, floor_us=self._floor(), resume=self._resume_frame(), now=now)
        late, dups = screened.quarantine, screened.resumed
        reasons = dict(late.group_by(c.Q_REASON).len().iter_rows()) if late.height else {}
        fresh, repeats = self.store.add(screened.ticks) if screened.ticks.height else (screened.ticks, 0)
        if fresh.height:
            self._take(fresh, now_us)
        return EngineOutput(_NO_CANDLES, late, fresh.height, dups + repeats, quarantined_by=reasons,
                            ticks=fresh.drop(STORE_W, STORE_SEQ) if fresh.height else None)

    def revisable_from(self) -> datetime | None:
        """The oldest event time the next step still admits (newest event - lateness - horizon); None before any."""
        return None if (floor := self._floor()) is None else dt_of(floor)

    def next_close(self) -> datetime | None:
        """When (on the clock `step` takes) the earliest open window closes if nothing more arrives; None if only
        a new trade can close it."""
        if self._due == NEVER:
            return None
        at = self.timing.due_at(self._due, outage=self._outage)
        if at is not None and self.ahead_us and self._prepared is None and self._tried != at:
            at -= self.ahead_us  # wake early to fold ahead (once per due instant)
        return None if at is None else dt_of(at)

    def held(self) -> int:
        """Rows of state held (ticks, open windows, tails, ledger): flat on a long run."""
        return len(self.store) + len(self.ledger) + self.state.rows() + sum(p.height for p in self._pending)

    # -- steps ----------------------------------------------------------------------------------------------
    def _take(self, fresh: pl.DataFrame, now_us: int) -> None:
        """Queue accepted ticks for the next fold and advance the event clock."""
        lo, hi, received = fresh.select(
            pl.col(c.TIMESTAMP).dt.epoch("us").min().alias("lo"), pl.col(c.TIMESTAMP).dt.epoch("us").max().alias("hi"),
            pl.col(c.LOCAL_TIMESTAMP).dt.epoch("us").max().alias("received")).row(0)
        self._pending.append(fresh)
        self._pending_min = lo if self._pending_min is None else min(self._pending_min, lo)
        self.timing.observe(hi, received, now_us)
        self._due_by(lo)

    def _revising(self) -> bool:
        """Whether queued ticks fall in an emitted window (fold at once: a revision is not held back)."""
        return self._pending_min is not None and self._pending_min < self._emitted_upto

    def _prepare(self, now_us: int) -> None:
        """Fold ahead for the earliest due instant when it is at most 2 x ahead away (see engine/ahead.py)."""
        at = self.timing.due_at(self._due, outage=self._outage) if self._due != NEVER else None
        if at is None or not at - 2 * self.ahead_us <= now_us < at:
            return
        self._tried = at
        mark = self.timing.peek(at, outage=self._outage)
        if mark is None or self._due > mark:
            return
        pending, windows = self._queued()
        candles, state = fold(self.state, windows, self.spec, now=dt_of(at), until_us=mark, keep_us=self._keep())
        self._prepared = Prepared(at, mark, len(self._pending), self._epoch, candles, state, self._late_ticks(pending))

    def _settle(self, now: datetime, out: EngineOutput) -> None:
        """Emit the fold done ahead once its watermark is reached, if still valid; drop it if not."""
        ready = self._prepared
        assert ready is not None
        if not still_valid(ready, self._pending, self._epoch, self.base_us):
            self._prepared = None
            return
        mark = self.timing.peek(us_of(now), outage=self._outage)
        if mark is None or mark < ready.mark_us:
            return  # not due yet: keep it
        self._prepared, self.state = None, ready.state
        self._pending = self._pending[ready.held:]
        self._pending_min = first_us(self._pending)
        self._emit(out, stamp(ready.candles, now), ready.late)
        if self._pending_min is not None:
            self._due_by(self._pending_min)  # trades queued after the fold ahead: their windows are due too

    def _keep(self) -> int | None:
        """From where on open windows and gaps are kept for later revisions (us): the floor, on a whole window of
        the longest timeframe."""
        floor = self._floor()
        longest = tfm.duration_us(self.timeframes[-1])
        return None if floor is None else floor // longest * longest

    def _prune(self) -> None:
        """Forget ticks and revision numbers the horizon no longer needs."""
        floor = self._floor()
        if floor is not None:
            self.store.prune(floor)
            self.ledger.prune(floor)

    def _fold(self, mark: int | None, now: datetime, final: bool, out: EngineOutput) -> EngineOutput:
        """Run the core on everything queued; number revisions; prune what the horizon no longer needs."""
        self._prepared = None  # a fold now supersedes one done ahead
        pending, windows = self._queued()
        late_ticks = self._late_ticks(pending)
        final_us = self.timing.max_event if final else None
        candles, self.state = fold(self.state, windows, self.spec, now=now, until_us=mark, final_us=final_us,
                                   keep_us=self._keep(), changed=self._changed)
        self._pending, self._pending_min, self._changed = [], None, None
        self._emit(out, candles, late_ticks)
        return out

    def _queued(self) -> tuple[pl.DataFrame | None, pl.DataFrame]:
        """(the queued ticks as one frame or None, the base trade windows they fall in, rebuilt from the store)."""
        pending = pl.concat(self._pending) if self._pending else None
        if pending is None:
            return None, self.state.open.clear()
        return pending, self.store.windows(pending, self.spec.base, self.instruments)

    def _emit(self, out: EngineOutput, candles: pl.DataFrame, late: pl.DataFrame | None) -> None:
        """Add a fold's candles (revisions numbered) and counts to `out` (a step may emit a fold done ahead and
        then fold again); prune what the horizon no longer needs."""
        numbered = self.ledger.number(candles, late, self.timeframes)
        out.candles = pl.concat([out.candles, numbered]) if out.candles.height else numbered
        out.revisions += int(candles.get_column(REEMIT).sum()) if candles.height else 0
        out.late_trades += 0 if late is None else late.height
        self._prune()
        self._refresh()

    def _due_by(self, lo_us: int) -> None:
        """A queued trade at `lo_us` (us) makes its base window due at its end: a new series' first window may
        close before any cursor window does."""
        self._due = min(self._due, lo_us // self.base_us * self.base_us + self.base_us)

    def _late_ticks(self, pending: pl.DataFrame | None) -> pl.DataFrame | None:
        """The queued ticks that fell in windows already emitted (before their series' base cursor)."""
        return None if pending is None or not self._revising() else late_ticks(pending, self.state.cursor, self.spec.base)

    def _refresh(self) -> None:
        """Scalars a step without a fold needs: the earliest window end due, the newest emitted base window."""
        ends, upto = cursor_marks(self.state.cursor, self.spec.base)
        self._due = ends if ends is not None else NEVER
        self._emitted_upto = upto if upto is not None else -NEVER
        self._outage = self.state.gaps.get_column(gp.GAP_END).null_count() > 0 if self.state.gaps.height else False

    def _floor(self) -> int | None:
        """The oldest event time a window can still be revised from: newest event - lateness - horizon."""
        if self.timing.max_event is None:
            return None
        return self.timing.max_event - self.lateness_us - self.horizon_us

    def _resume_frame(self) -> pl.DataFrame | None:
        """After a warm start: per series, where the windows an earlier run wrote end (dropped once passed)."""
        if self._resume is not None and self.timing.max_event is not None:
            floor = self._floor()
            resumed = self._resume.get_column("_resume").max()
            if floor is not None and isinstance(resumed, int) and resumed < floor:
                self._resume = None  # the revision floor rejects those ticks on its own now
        return self._resume
