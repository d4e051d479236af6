"""A model-based test of the stream engine: hypothesis drives a live CandleEngine through arbitrary sequences of
trade batches (in order, jittered, late, far too late, from the future, repeated), clock advances, feed outages
and restarts warm from what was emitted, and checks after every step that nothing crashed, every tick was accounted
for and the state stayed bounded; at the end every window's highest revision equals the batch reference (the
backfill's kernel) of the ticks the engine kept, with the outages and restarts marked feed."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mdstream.contract import columns as c
from mdstream.contract.feed import GAP_DISCONNECT, GAP_STARTUP, FeedGap
from mdstream.contract.schema import CANDLE_SCHEMA, TICK_SCHEMA, conform
from mdstream.engine.incremental import CandleEngine
from mdstream.kernel import gaps as gp
from mdstream.kernel.candles import candles_from_ticks
from mdstream.kernel.features import STATE_COLUMNS, add_features
from support.engine_frames import NOW, T0, assert_same, latest

EXCHANGE = "binance"
SYMBOLS = ("BTCUSDT", "ETHUSDT")
TIMEFRAMES = ("15s", "1m")
LATENESS, HORIZON = timedelta(seconds=1), timedelta(seconds=30)
US = timedelta(microseconds=1)
HELD_BOUND = 5_000  # rows of state: far above what 30 s of horizon at this rate needs, far below a leak

# When a trade happened, relative to the batch's receive time: on time, jittered within the lateness, late within
# the horizon (a revision), beyond the horizon (quarantined), or ahead of the clock (quarantined).
DELAYS_MS = st.one_of(st.integers(0, 900), st.integers(0, 900), st.integers(1_000, 25_000),
                      st.integers(40_000, 90_000), st.integers(-20_000, -8_000))


def _engine(ahead: timedelta) -> CandleEngine:
    """The engine as the stream job builds it (shortened horizon, so that pruning and quarantine happen)."""
    return CandleEngine(TIMEFRAMES, lateness=LATENESS, horizon=HORIZON, max_quiet=timedelta(seconds=20), ahead=ahead)


def _reference(ticks: pl.DataFrame, gaps: list[dict], end: datetime) -> pl.DataFrame:
    """The batch kernel's candles of `ticks` up to `end` (exclusive) with `gaps` (per symbol, or None: all) feed."""
    feed = pl.DataFrame(gaps, schema=gp.GAP_SCHEMA)
    candles = candles_from_ticks(ticks, TIMEFRAMES, now=NOW, end=end, feed_gaps=feed.lazy())
    return conform(add_features(candles).collect(engine="in-memory").drop(STATE_COLUMNS), CANDLE_SCHEMA)


class EngineMachine(RuleBasedStateMachine):
    """The model: the wall clock, the ticks the engine accepted (minus those a restart lost), the gaps injected."""

    ahead = timedelta(0)  # windows folded ahead of their closing time (none here; see the subclass)

    def __init__(self) -> None:
        super().__init__()
        self.now = T0 + timedelta(hours=1)
        self.engine = _engine(self.ahead)
        self.kept: list[pl.DataFrame] = []
        self.emitted: list[pl.DataFrame] = []
        self.gaps: list[dict] = []
        self.next_id = 1
        self.down: datetime | None = None  # start of the outage whose end waits for the first event after it
        self._start()

    def _start(self, resumed: dict[str, datetime] | None = None) -> None:
        """What the job does on (re)start: windows up to the one holding the start instant are partial."""
        resumed = resumed or {}
        since = self.now - HORIZON - LATENESS  # the earliest a straggler is still admitted
        self.engine.add_gaps([FeedGap(EXCHANGE, (), since, self.now, GAP_STARTUP)])
        # windows an earlier run wrote stay as written: for the reference the gap starts where they end
        for symbol in SYMBOLS:
            start = max(since, resumed.get(symbol, since))
            if start <= self.now:
                self.gaps.append(self._gap(symbol, start, self.now, GAP_STARTUP))

    @staticmethod
    def _gap(symbol: str | None, start: datetime, end: datetime, reason: str) -> dict:
        return {c.EXCHANGE: EXCHANGE, c.SYMBOL: symbol, gp.GAP_START: start, gp.GAP_END: end, gp.GAP_REASON: reason}

    def _step(self, ticks: pl.DataFrame, final: bool = False) -> None:
        """One engine step at the model's clock; every tick accepted, repeated or quarantined, exactly once."""
        out = self.engine.step(ticks, now=self.now, final=final)
        assert out.accepted + out.duplicates + out.late.height == ticks.height, "a tick was not accounted for"
        if out.ticks is not None and out.ticks.height:
            self.kept.append(out.ticks.select(list(TICK_SCHEMA)))
        if out.candles.height:
            self.emitted.append(out.candles)

    def _last_event(self) -> datetime | None:
        """The newest event time the engine accepted (where an outage starts, as the source places it)."""
        return self.engine.max_event

    @rule(n=st.integers(1, 6), delays=st.lists(DELAYS_MS, min_size=6, max_size=6),
          symbols=st.lists(st.sampled_from(SYMBOLS), min_size=6, max_size=6),
          moves=st.lists(st.integers(-30, 30), min_size=6, max_size=6), wait_ms=st.integers(0, 3_000))
    def trades(self, n, delays, symbols, moves, wait_ms):
        """A batch of trades received now, after `wait_ms` of wall time."""
        self.now += timedelta(milliseconds=wait_ms)
        rows = []
        for k in range(n):
            ts = self.now - timedelta(milliseconds=delays[k])
            rows.append({c.EXCHANGE: EXCHANGE, c.SYMBOL: symbols[k], c.TIMESTAMP: ts, c.LOCAL_TIMESTAMP: self.now,
                         c.ID: str(self.next_id), c.SIDE: c.SIDE_BUY if moves[k] >= 0 else c.SIDE_SELL,
                         c.PRICE: 100.0 + moves[k] / 10, c.AMOUNT: 0.5 + abs(moves[k]) / 10})
            self.next_id += 1
        batch = conform(pl.DataFrame(rows), TICK_SCHEMA)
        if self.down is not None:
            # as the source places it: the outage ends at the first event stamped at or after the reconnect (on
            # the feed's clock, here within the lateness of now) and its start; a late one does not end it
            after = batch.filter(pl.col(c.TIMESTAMP) >= max(self.down, self.now - LATENESS))
            if after.height:
                end = after.get_column(c.TIMESTAMP).min()
                self.engine.add_gaps([FeedGap(EXCHANGE, SYMBOLS, self.down, end, GAP_DISCONNECT)])
                self.gaps.extend(self._gap(s, self.down, end, GAP_DISCONNECT) for s in SYMBOLS)
                self.down = None
        self._step(batch)

    @precondition(lambda self: bool(self.kept))
    @rule(picks=st.lists(st.integers(0, 10_000), min_size=1, max_size=4), wait_ms=st.integers(0, 2_000))
    def repeats(self, picks, wait_ms):
        """Trades sent again (a reconnect's replay, a venue's repeat): duplicates, never counted twice."""
        self.now += timedelta(milliseconds=wait_ms)
        pool = pl.concat(self.kept)
        again = pool[[p % pool.height for p in picks]].with_columns(pl.lit(self.now).cast(pool.schema[c.TIMESTAMP])
                                                                     .alias(c.LOCAL_TIMESTAMP))
        self._step(again)

    @rule(seconds=st.floats(0.05, 45.0))
    def advance(self, seconds):
        """Wall time passes with no trade: windows close on the clock (bounded past the last trade)."""
        self.now += timedelta(seconds=seconds)
        self._step(pl.DataFrame(schema=TICK_SCHEMA))

    @precondition(lambda self: self.down is None and self.engine.max_event is not None)
    @rule(seconds=st.floats(1.0, 50.0))
    def outage(self, seconds):
        """The feed drops: it is down from its last event; windows closing meanwhile are feed."""
        start = self._last_event()
        assert start is not None
        self.down = start
        self.engine.add_gaps([FeedGap(EXCHANGE, SYMBOLS, start, None, GAP_DISCONNECT)])
        for _ in range(3):
            self.now += timedelta(seconds=seconds / 3)
            self._step(pl.DataFrame(schema=TICK_SCHEMA))

    @precondition(lambda self: self.down is None)
    @rule()
    def restart(self):
        """The job restarts warm from what it wrote; what it held but had not written is lost (marked feed)."""
        stored = latest(pl.concat(self.emitted)) if self.emitted else pl.DataFrame(schema=CANDLE_SCHEMA)
        self.engine = _engine(self.ahead)
        self.engine.warm(stored, restarted_at=self.now)
        resume = self.engine._resume
        resumed: dict[str, datetime] = {}
        pool = pl.concat(self.kept) if self.kept else pl.DataFrame(schema=TICK_SCHEMA)
        if resume is None:
            self.kept = []
        else:
            # ticks of windows never written are gone; the stored windows end at `_resume` per series
            ends = resume.with_columns(pl.col("_resume").cast(pl.Int64))
            pool = pool.join(ends, on=[c.EXCHANGE, c.SYMBOL], how="left").filter(
                pl.col(c.TIMESTAMP).dt.epoch("us") < pl.col("_resume")).drop("_resume")
            self.kept = [pool] if pool.height else []
            for _, symbol, at in resume.iter_rows():
                resumed[symbol] = pl.Series([at], dtype=pl.Int64).cast(pl.Datetime("us", "UTC")).item()
        # The earlier run's gaps only describe the windows it wrote: the new run builds everything after them.
        earlier, self.gaps = self.gaps, []
        for g in earlier:
            for symbol in [g[c.SYMBOL]] if g[c.SYMBOL] else SYMBOLS:
                if symbol in resumed and g[gp.GAP_START] < resumed[symbol]:
                    end = min(g[gp.GAP_END], resumed[symbol])
                    self.gaps.append(self._gap(symbol, g[gp.GAP_START], end, g[gp.GAP_REASON]))
        if resume is not None:
            for symbol in resumed:
                if resumed[symbol] < self.now:
                    self.gaps.append(self._gap(symbol, resumed[symbol], self.now, "restart"))
        self._start(resumed)

    @invariant()
    def bounded(self):
        assert self.engine.held() < HELD_BOUND

    def teardown(self):
        if self.down is not None or not self.kept or not self.emitted:
            return  # an outage still open, or nothing kept: nothing to compare
        # Past the quiet bound: every window holding a kept trade closes.
        self.now += timedelta(seconds=25)
        self._step(pl.DataFrame(schema=TICK_SCHEMA))
        stream = latest(pl.concat(self.emitted))
        base_us = 15_000_000
        ts = pl.col(c.TIMESTAMP_IN).dt.epoch("us")
        fronts = stream.filter(pl.col(c.TIMEFRAME) == TIMEFRAMES[0]).group_by(c.EXCHANGE, c.SYMBOL).agg(
            (ts.max() + base_us).alias("_front"))
        end = pl.Series([fronts.get_column("_front").max()], dtype=pl.Int64).cast(pl.Datetime("us", "UTC")).item()
        width = pl.col(c.TIMEFRAME).replace_strict({"15s": 15_000_000, "1m": 60_000_000}, return_dtype=pl.Int64)
        # the reference's windows each series has closed (its windows end where its stream grid ends)
        expected = _reference(pl.concat(self.kept), self.gaps, end).join(fronts, on=[c.EXCHANGE, c.SYMBOL]).filter(
            ts + width <= pl.col("_front")).drop("_front")
        assert_same(expected, stream)


class FoldAheadMachine(EngineMachine):
    """The same, with windows folded up to 0.4 s before they are due and emitted when they are: the clock steps
    land in that span often, and trades arriving meanwhile must void the fold when they reach its windows."""

    ahead = timedelta(milliseconds=400)


for machine in (EngineMachine, FoldAheadMachine):
    machine.TestCase.settings = settings(max_examples=30, stateful_step_count=20, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow])
TestEngineMachine = EngineMachine.TestCase
TestFoldAheadMachine = FoldAheadMachine.TestCase
