"""The stream job: source batches -> engine -> sink, with checkpoints, metrics, console and clean stops."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from ..contract import columns as c
from ..contract import defaults as d
from ..contract.clock import Clock, WallClock
from ..contract.errors import SinkUnavailable
from ..contract.feed import GAP_STARTUP, FeedGap
from ..contract.schema import TICK_SCHEMA, conform
from ..engine.incremental import CandleEngine
from ..engine.output import EngineOutput
from ..inputs.instruments import InstrumentBook
from ..kernel.grid import stamp
from ..sinks import base
from ..sinks.failures import LOCK_HELD, cause
from .batcher import SourceBatch, source_batches
from .heal import Healed, Healer, start_window
from .requests import STREAM_MODES as MODES  # noqa: F401 (re-exported)
from .requests import StreamOptions
from .signals import aclose, stop_on_signals
from .stream_progress import CHECKPOINT_VERSION, SourceCounts, StreamStats, add_totals, read_checkpoint, write_checkpoint

__all__ = ["StreamOptions", "StreamRunner", "StreamStats", "SourceCounts", "read_checkpoint", "write_checkpoint"]



class StreamRunner:
    """Runs a source through the engine into a sink until the input ends, --duration passes or a signal comes.

    Per batch, in order:
    1. take the next micro-batch from the source (ticks, rejected rows, feed gaps, the source's accounting);
       the batcher closes one early when the engine says a window is due (its end + lateness);
    2. give the gaps to the engine, then fold in the ticks: it emits closed windows and revisions;
    3. write candles (mode candles/both), accepted raw ticks (mode ticks/both) and quarantined rows to the sink;
    4. flush the sink when something closed (live) or commit_interval passed, and only then write the checkpoint;
    5. update metrics, health and the console.
    Steps 2-5 run on a worker thread, so signals and the feed are served while a batch is computed. At the end of
    a finite input every window up to the last trade is emitted (the one holding it cut short: feed); on
    --duration or SIGINT/SIGTERM the emitted rows are flushed and the open windows are left to the next run
    (which marks them feed).
    """

    def __init__(self, source, sink, clock: Clock, opts: StreamOptions, *, console=None, metrics=None, health=None,
                 wall: Clock | None = None, instruments: InstrumentBook | None = None, healer: Healer | None = None):
        self.source, self.sink, self.clock, self.opts = source, sink, clock, opts
        self.healer = healer  # fills id jumps from the venue's REST history (jobs/heal.py); None: --heal off
        self.wall = wall or WallClock()  # stamps timestamp_out; `clock` drives the batches (a replay's own)
        self.book = instruments if instruments is not None else InstrumentBook()
        self._series: set[tuple[str, str]] = set()
        self.console, self.metrics, self.health = console, metrics, health
        self.engine = CandleEngine(opts.timeframes, lateness=timedelta(seconds=opts.lateness),
                                   horizon=timedelta(seconds=opts.horizon), live=opts.live,
                                   max_skew=timedelta(seconds=opts.max_skew), max_quiet=timedelta(seconds=opts.max_quiet),
                                   ahead=timedelta(seconds=min(opts.lateness / 2, d.FOLD_AHEAD_S)))
        self.stats = StreamStats()
        self.label = getattr(source, "exchange", "source")
        self._totals: dict[str, Any] = {}
        self._stop = asyncio.Event()
        self._started_gap = False
        self._last_flush = time.monotonic()
        self._last_status = time.monotonic()

    def stop(self) -> None:
        """Ask the job to stop after the current batch."""
        self._stop.set()

    def warm(self) -> None:
        """Continue features, day totals and the candle grid from what the sink holds (after a restart), and the
        run's totals from the checkpoint."""
        self._totals = read_checkpoint(self.opts.checkpoint, self.label, self.engine.timeframes) if self.opts.checkpoint else {}
        if self.opts.live and not self._started_gap:
            # What traded before the job listened is unknown: the window holding the start instant is partial, and
            # so is any earlier one a straggler (admitted up to horizon + lateness late) falls in.
            start = self.clock.now()
            since = start - timedelta(seconds=self.opts.horizon + self.opts.lateness)
            listed = tuple(getattr(self.source, "symbols", None) or ())
            if self.healer is not None and listed:
                # one gap per symbol: each is healed on its own once its first trade is seen (jobs/heal.py)
                gaps = [FeedGap(self.label, (s,), since, start, GAP_STARTUP) for s in listed]
                self.healer.starting(gaps, start_window(start, self.engine.timeframes, self.opts.horizon))
            else:
                gaps = [FeedGap(self.label, (), since, start, GAP_STARTUP)]
            self.engine.add_gaps(gaps)
            self._started_gap = True
        if not self.opts.warm_start or self.opts.mode == "ticks" or not base.can(self.sink, base.READ_BACK):
            return
        symbols = getattr(self.source, "symbols", None) or None
        stored = self.sink.read_candles(exchange=self.label, symbols=symbols, timeframes=self.engine.timeframes)
        if stored.height:
            # A replay reads its input again: what the earlier run wrote is simply skipped, nothing is missing.
            self.engine.warm(stored, restarted_at=self.clock.now() if self.opts.live else None)
            if self.console:
                self.console.message(f"warm start from {stored.height:,} stored candles")

    async def run(self) -> StreamStats:
        """Consume the source until it ends or the job is stopped; returns the run's counters."""
        stop_on_signals(self.stop)
        if not await self._warm_waiting():
            return self._finish()
        batches = source_batches(self.source, self.clock, due=self.engine.next_close).__aiter__()
        ended = False
        nxt = asyncio.ensure_future(anext(batches))
        stopper = asyncio.ensure_future(self._stop.wait())
        try:
            while not self._stop.is_set():
                done, _ = await asyncio.wait({nxt, stopper}, timeout=self._remaining(), return_when=asyncio.FIRST_COMPLETED)
                if nxt not in done:
                    break  # stopped, or --duration passed
                try:
                    batch = nxt.result()
                except StopAsyncIteration:
                    ended = True
                    break
                nxt = asyncio.ensure_future(anext(batches))  # the next batch gathers while this one is computed
                fills = self._fills(batch)
                await asyncio.to_thread(self._process, batch, False, fills)
            if ended:
                await asyncio.to_thread(self._process, None, True)
        finally:
            stopper.cancel()
            if not nxt.done():
                nxt.cancel()
            await aclose(batches)
            if self.healer is not None:
                await self.healer.close()
            await asyncio.to_thread(self._commit, force=True)
        return self._finish()

    async def _warm_waiting(self) -> bool:
        """warm(), retried while another process holds the sink's file (a reader), until it succeeds (True) or the
        job is stopped or --duration passes first (False). The source is not read meanwhile: no trade is taken in
        that could be lost, and the feed's start is marked feed as on any start."""
        told = False
        while True:
            try:
                await asyncio.to_thread(self.warm)
                return True
            except SinkUnavailable as error:
                if cause(error) != LOCK_HELD:
                    raise
                if self.console and not told:
                    self.console.message(f"waiting for the sink before reading the feed: {error}", level="warning")
                    told = True
            remaining = self._remaining()
            if remaining == 0.0:
                return False
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=min(1.0, remaining) if remaining else 1.0)
                return False
            except TimeoutError:
                continue

    def _finish(self) -> StreamStats:
        """Print the run's summary (with instrument warnings); its counters."""
        if self.console:
            summary = self.stats.as_dict(self.sink)
            if self.book.warnings:
                summary["warnings"] = " | ".join(self.book.warnings)
            if self.healer is not None:
                summary["healed"] = self.healer.stats.as_dict()
            self.console.summary(summary)
        return self.stats

    def _remaining(self) -> float | None:
        """Seconds left of --duration, or None."""
        if self.opts.duration is None:
            return None
        return max(0.0, self.opts.duration - (time.monotonic() - self.stats.started))

    def _fills(self, batch: SourceBatch) -> list[Healed]:
        """On the event loop: start REST fills for the batch's id jumps; the fills finished meanwhile."""
        if self.healer is None:
            return []
        self.healer.watch(batch.gaps, batch.ticks)
        return self.healer.collect(self.engine.revisable_from())

    def _process(self, batch: SourceBatch | None, final: bool, fills: list[Healed] | None = None) -> None:
        """Steps 2-5 of the class docstring for one batch (None with `final`: the input ended), with the trades of
        finished REST fills folded in as late trades and the gaps they proved complete healed."""
        # The batch's own closing time: the source's clock may already be further on (the next batch gathers
        # meanwhile), and a replay's clock must not run ahead of the ticks handed over.
        now = batch.received_at if batch is not None else self.clock.now()
        ticks = batch.ticks if batch is not None else pl.DataFrame(schema=TICK_SCHEMA)
        filled = [f.ticks for f in fills or [] if f.ticks.height]
        if filled:
            ticks = pl.concat([ticks, *(conform(f, TICK_SCHEMA) for f in filled)])
        for fill in fills or []:
            if fill.heal:
                self._healed(self.engine.heal(fill.heal, fill.keep))
        if batch is not None and batch.gaps:
            self.engine.add_gaps(batch.gaps)
            self.stats.gaps += len(batch.gaps)
            if self.metrics:
                self.metrics.gap(len(batch.gaps))
        if self.opts.mode == "ticks":
            out = self.engine.admit(ticks, now=now)  # raw ticks only: nobody reads candles, nothing is folded
        else:
            self._learn_instruments(ticks)
            out = self.engine.step(ticks, now=now, final=final)
        self.stats.batches += 1
        self._account(batch, out, sum(f.height for f in filled))
        if self.opts.mode in ("candles", "both") and out.candles.height:
            out.candles = stamp(out.candles, self.wall.now())
            self._write(base.CANDLES, out.candles)
            self.stats.candles += out.candles.height
            self.stats.revisions += out.revisions
            self.stats.late_trades += out.late_trades
        if self.opts.mode in ("ticks", "both") and out.ticks is not None:
            self._write(base.TICKS, out.ticks)
        rejected = [q for q in (batch.quarantine if batch is not None else None, out.late) if q is not None and q.height]
        for q in rejected:
            self._write(base.QUARANTINE, q)
        # Live, closed windows are made visible at once; a replay flushes on the commit interval (each flush of a
        # file sink costs a connection and a transaction, more than folding an hour of trades).
        self._commit(force=final or (self.opts.live and out.candles.height > 0))
        self._observe(out, rejected, now)

    def _healed(self, windows: int) -> None:
        """Count the windows a fill made whole."""
        if self.healer is not None and windows:
            self.healer.stats.windows += windows
            if self.metrics:
                self.metrics.healed_windows(windows)

    def _account(self, batch: SourceBatch | None, out: EngineOutput, filled: int = 0) -> None:
        """received (the feed's records and REST-filled trades) = accepted + quarantined (source and engine) +
        duplicates (source and engine) + ignored."""
        counts = SourceCounts(received=filled, accepted=out.accepted, quarantined=out.late.height,
                              duplicates=out.duplicates)
        if batch is not None:
            counts.received += batch.received
            counts.quarantined += batch.quarantine.height
            counts.duplicates += batch.duplicates
            counts.ignored = dict(batch.ignored)
        self.stats.count(self.label, counts, out.quarantined_by)

    def _learn_instruments(self, ticks: pl.DataFrame) -> None:
        """Give the engine the instrument (volume rule) of every series the first time it trades."""
        if ticks.height == 0:
            return
        new = [key for key in ticks.select(c.EXCHANGE, c.SYMBOL).unique().iter_rows() if key not in self._series]
        if not new:
            return
        known = len(self.book.warnings)
        self._series.update(new)
        self.engine.instruments = self.book.frame(sorted(self._series))
        if self.console:
            for warning in self.book.warnings[known:]:
                self.console.message(warning, level="warning")

    def _write(self, kind: str, frame: pl.DataFrame) -> None:
        """Hand `frame` to the sink and count it (durable at the next flush)."""
        self.sink.write(kind, frame)
        self.stats.rows_written += frame.height
        if self.metrics:
            self.metrics.rows_written(self.opts.sink_name, kind, frame.height)

    def _commit(self, *, force: bool) -> None:
        """Flush the sink (durable), then write the checkpoint; never the other way round."""
        if not force and time.monotonic() - self._last_flush < self.opts.commit_interval:
            return
        self.sink.flush()
        self._last_flush = time.monotonic()
        if self.opts.checkpoint is not None:
            run = self.stats.as_dict()
            totals = add_totals(self._totals, run)
            state = {"version": CHECKPOINT_VERSION, "written_at": self.wall.now().isoformat(), "exchange": self.label,
                     "timeframes": list(self.engine.timeframes), "mode": self.opts.mode,
                     "watermark": self.engine.max_event.isoformat() if self.engine.max_event else None,
                     "stats": run, "totals": totals}
            sink_state = getattr(self.sink, "state", None)
            if sink_state:
                state["sink"] = sink_state()
            write_checkpoint(self.opts.checkpoint, state)

    def _observe(self, out: EngineOutput, rejected: list[pl.DataFrame], now: datetime) -> None:
        """Metrics, health and console for one batch."""
        if self.metrics:
            self.metrics.batch()
            if out.ticks is not None:
                self.metrics.observe_ticks(out.ticks, now)
            self.metrics.observe_candles(out.candles)
            for q in rejected:
                self.metrics.quarantined(q.height)
            if out.late_trades:
                self.metrics.late_trades(out.late_trades)
        if self.health:
            self.health.mark_batch()
        if self.console:
            if out.candles.height:
                self.console.candles(out.candles)
            if time.monotonic() - self._last_status >= self.opts.status_interval:
                self._last_status = time.monotonic()
                self.console.status(self.stats.as_dict(self.sink))
