"""The stream job: source batches -> engine -> sink, with checkpoints, metrics, console and clean stops."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from ..contract import columns as c
from ..contract import timeframes as tfm
from ..contract.clock import Clock
from ..contract.schema import CANDLE_SCHEMA, QUARANTINE_SCHEMA, TICK_SCHEMA, conform
from ..engine.incremental import CandleEngine, EngineOutput
from ..inputs.instruments import InstrumentBook
from ..sinks import base
from .batcher import source_batches
from .requests import STREAM_MODES as MODES  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class StreamOptions:
    """How the stream job runs."""

    mode: str = "candles"
    timeframes: tuple[str, ...] = tfm.ALL_TIMEFRAMES
    lateness: float = 1.0  # seconds
    horizon: float = 120.0  # seconds after emission a window still takes revisions
    duration: float | None = None  # wall seconds, then a clean stop
    commit_interval: float = 1.0  # wall seconds between sink flushes when nothing closed
    status_interval: float = 5.0
    checkpoint: Path | None = None
    warm_start: bool = True
    sink_name: str = "duckdb"  # label of the rows_written metric


@dataclass
class StreamStats:
    """Counters of a run, shown on the status line and in the closing summary."""

    ticks: int = 0
    batches: int = 0
    candles: int = 0
    revisions: int = 0
    quarantined: int = 0
    duplicates: int = 0
    gaps: int = 0
    rows_written: int = 0
    started: float = field(default_factory=time.monotonic)

    def as_dict(self, sink: Any = None) -> dict[str, Any]:
        """The counters plus ticks/s and the sink's own summary line."""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        out = {k: v for k, v in self.__dict__.items() if k != "started"}
        out["ticks_per_s"] = round(self.ticks / elapsed, 1)
        out["elapsed_s"] = round(elapsed, 1)
        describe = getattr(sink, "summary", None)
        if describe:
            out["sink"] = describe()
        return out


class StreamRunner:
    """Runs a source through the engine into a sink until the input ends, --duration passes or a signal comes.

    Per batch, in order:
    1. take the next micro-batch from the source (ticks, rejected rows, feed gaps);
    2. give the gaps to the engine, then fold in the ticks: it emits closed windows and revisions;
    3. write candles (mode candles/both), raw ticks (mode ticks/both) and quarantined rows to the sink;
    4. flush the sink when something closed or commit_interval passed, and only then write the checkpoint;
    5. update metrics, health and the console.
    At the end of a finite input every window up to the last trade is emitted; on --duration or SIGINT/SIGTERM
    the emitted rows are flushed and the open windows are left to the next run (which marks them gap=feed).
    """

    def __init__(self, source, sink, clock: Clock, opts: StreamOptions, *, console=None, metrics=None, health=None,
                 instruments: InstrumentBook | None = None):
        self.source, self.sink, self.clock, self.opts = source, sink, clock, opts
        self.book = instruments if instruments is not None else InstrumentBook()
        self._series: set[tuple[str, str]] = set()
        self.console, self.metrics, self.health = console, metrics, health
        self.engine = CandleEngine(opts.timeframes, lateness=timedelta(seconds=opts.lateness),
                                   horizon=timedelta(seconds=opts.horizon))
        self.stats = StreamStats()
        self._stop = asyncio.Event()
        self._last_flush = time.monotonic()
        self._last_status = time.monotonic()

    def stop(self) -> None:
        """Ask the job to stop after the current batch."""
        self._stop.set()

    def warm(self) -> None:
        """Continue features and the candle grid from what the sink already holds (after a restart)."""
        reader = getattr(self.sink, "read_recent", None)
        if not self.opts.warm_start or reader is None or self.opts.mode == "ticks":
            return
        symbols = getattr(self.source, "symbols", None)
        recent = reader(exchange=self.source.exchange, symbols=symbols, timeframes=self.engine.timeframes)
        if recent is not None and recent.height:
            self.engine.warm(recent, restarted_at=self.clock.now())
            if self.console:
                self.console.message(f"warm start from {recent.height:,} stored candles")

    async def run(self) -> StreamStats:
        """Consume the source until it ends or the job is stopped; returns the run's counters."""
        self._install_signals()
        self.warm()
        batches = source_batches(self.source, self.clock).__aiter__()
        ended = False
        try:
            while not self._stop.is_set():
                if self.opts.duration is not None and time.monotonic() - self.stats.started >= self.opts.duration:
                    break
                nxt = asyncio.ensure_future(batches.__anext__())
                stopper = asyncio.ensure_future(self._stop.wait())
                done, _ = await asyncio.wait({nxt, stopper}, timeout=self._remaining(), return_when=asyncio.FIRST_COMPLETED)
                stopper.cancel()
                if nxt not in done:
                    nxt.cancel()
                    break
                try:
                    batch = nxt.result()
                except StopAsyncIteration:
                    ended = True
                    break
                self._process(batch.ticks, batch.quarantine, batch.gaps, final=False)
            if ended:
                self._process(pl.DataFrame(schema=TICK_SCHEMA), None, [], final=True)
        finally:
            await _aclose(batches)
            self._commit(force=True)
        if self.console:
            summary = self.stats.as_dict(self.sink)
            if self.book.warnings:
                summary["warnings"] = " | ".join(self.book.warnings)
            self.console.summary(summary)
        return self.stats

    def _remaining(self) -> float | None:
        """Seconds left of --duration, or None."""
        if self.opts.duration is None:
            return None
        return max(0.0, self.opts.duration - (time.monotonic() - self.stats.started))

    def _process(self, ticks: pl.DataFrame, quarantine: pl.DataFrame | None, gaps: list, *, final: bool) -> None:
        """Steps 2-5 of the class docstring for one batch."""
        now = self.clock.now()
        if gaps:
            self.engine.add_gaps(gaps)
            self.stats.gaps += len(gaps)
            if self.metrics:
                self.metrics.gap(len(gaps))
        if self.opts.mode == "ticks":
            # Raw ticks only: nobody reads candles, so the engine is not run.
            out = EngineOutput(candles=pl.DataFrame(schema=CANDLE_SCHEMA), late=pl.DataFrame(schema=QUARANTINE_SCHEMA),
                               accepted=ticks.height)
        else:
            self._learn_instruments(ticks)
            out = self.engine.step(ticks, now=now, final=final)
        self.stats.ticks += out.accepted
        self.stats.duplicates += out.duplicates
        self.stats.batches += 1
        if self.opts.mode in ("candles", "both") and out.candles.height:
            self._write(base.CANDLES, out.candles)
            self.stats.candles += out.candles.height
            self.stats.revisions += out.revisions
        if self.opts.mode in ("ticks", "both") and ticks.height:
            self._write(base.TICKS, conform(ticks, TICK_SCHEMA))
        rejected = [q for q in (quarantine, out.late) if q is not None and q.height]
        for q in rejected:
            self._write(base.QUARANTINE, q)
            self.stats.quarantined += q.height
        self._commit(force=out.candles.height > 0 or final)
        self._observe(ticks, out, rejected, now)

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
            state = {"written_at": self.clock.now().isoformat(), "stats": self.stats.as_dict()}
            sink_state = getattr(self.sink, "state", None)
            if sink_state:
                state["sink"] = sink_state()
            write_checkpoint(self.opts.checkpoint, state)

    def _observe(self, ticks: pl.DataFrame, out, rejected: list[pl.DataFrame], now: datetime) -> None:
        """Metrics, health and console for one batch."""
        if self.metrics:
            self.metrics.batch()
            self.metrics.observe_ticks(ticks, now)
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

    def _install_signals(self) -> None:
        """SIGINT/SIGTERM stop the job cleanly (flush, checkpoint) instead of killing it mid-write."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.stop)
            except (NotImplementedError, RuntimeError):
                pass


def write_checkpoint(path: Path, state: dict) -> None:
    """Write `state` as JSON atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(state, default=str, indent=1))
    tmp.replace(path)


async def _aclose(iterator) -> None:
    """Close an async generator, ignoring one that is already closed."""
    close = getattr(iterator, "aclose", None)
    if close is not None:
        try:
            await close()
        except (RuntimeError, StopAsyncIteration):
            pass
