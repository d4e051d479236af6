"""Prometheus metrics of the stream job and its health probe (served by observe/metrics_http.py)."""

from __future__ import annotations

import threading
from datetime import datetime

import polars as pl
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ..contract import columns as c
from ..contract import defaults as d
from ..contract import schema
from ..contract.clock import Clock, WallClock
from ..sources.status import FeedStatus

NAMESPACE = "mdstream"
# Emission latency after a window closes: sub-second is the goal, tens of seconds means trouble.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
FEED_DOWN = "feed down"
DEFAULT_MAX_FEED_DOWN_S = d.MAX_FEED_DOWN_S


class FeedCollector:
    """Per-source metrics read from the sources' FeedStatus at scrape time, so they move while nothing else does."""

    def __init__(self) -> None:
        self.feeds: list[FeedStatus] = []

    def describe(self) -> list:
        """No fixed descriptions: the sources are added after registration."""
        return []

    def collect(self):
        """One family per metric, one sample per source (and reason or message type)."""
        snaps = [feed.snapshot() for feed in self.feeds]
        counters = [("source_received", "Messages (records) a source received.", "received"),
                    ("source_accepted", "Trades a source accepted and handed on.", "accepted"),
                    ("source_duplicates", "Trades a source dropped as exact repeats.", "duplicates"),
                    ("reconnects", "Successful reconnections of a source after its first connection.", "reconnects"),
                    ("connect_failures", "Connection attempts of a source that failed.", "failures")]
        for name, text, key in counters:
            family = CounterMetricFamily(f"{NAMESPACE}_{name}", text, labels=["source"])
            for snap in snaps:
                family.add_metric([snap["source"]], snap[key])
            yield family
        for name, text, key, label in (
            ("source_quarantined", "Messages a source quarantined, by reason.", "quarantined", "reason"),
            ("source_ignored", "Non-trade messages a source received, by type.", "ignored", "type"),
        ):
            family = CounterMetricFamily(f"{NAMESPACE}_{name}", text, labels=["source", label])
            for snap in snaps:
                for value, count in snap[key].items():
                    family.add_metric([snap["source"], value], count)
            yield family
        up = GaugeMetricFamily(f"{NAMESPACE}_feed_up", "1 while the source's feed is connected and flowing.", labels=["source"])
        down = GaugeMetricFamily(f"{NAMESPACE}_feed_down_seconds", "Seconds the source's feed has been down (0 while up).",
                                 labels=["source"])
        for snap in snaps:
            up.add_metric([snap["source"]], 1.0 if snap["up"] else 0.0)
            down.add_metric([snap["source"]], snap["down_s"])
        yield up
        yield down


class StreamMetrics:
    """Every metric of one stream process, held in its own registry (never the global default).

    Ages are computed when scraped, by `clock` (the job's clock: wall time live, event time in a replay), so they
    keep growing while the feed is silent.
    """

    def __init__(self, registry: CollectorRegistry | None = None, clock: Clock | None = None):
        """Create the metrics in `registry` (a fresh CollectorRegistry when None)."""
        self.registry = registry if registry is not None else CollectorRegistry()
        self.clock = clock or WallClock()
        self.feeds = FeedCollector()
        self.registry.register(self.feeds)
        self._newest: datetime | None = None
        r, ns = self.registry, NAMESPACE
        self.ticks_total = Counter("ticks", "Trades received.", ["exchange", "symbol"], namespace=ns, registry=r)
        self.batches_total = Counter("batches", "Micro-batches processed.", namespace=ns, registry=r)
        self.rows_written_total = Counter("rows_written", "Rows handed to a sink.", ["sink", "kind"], namespace=ns, registry=r)
        self.quarantined_total = Counter("quarantined", "Rows rejected into quarantine.", namespace=ns, registry=r)
        self.gaps_total = Counter("gaps", "Feed gaps detected (outages, trade id jumps).", namespace=ns, registry=r)
        self.late_trades_total = Counter("late_trades", "Trades arriving after their window was emitted.", namespace=ns,
                                         registry=r)
        self.heals_total = Counter("heals", "Feed gaps a REST fill was fetched for, by outcome (complete: the gap "
                                   "cleared; partial or failed: it stays feed).", ["outcome"], namespace=ns, registry=r)
        self.healed_trades_total = Counter("healed_trades", "Trades fetched from a venue's REST history to fill gaps.",
                                           namespace=ns, registry=r)
        self.healed_windows_total = Counter("healed_windows", "Windows emitted again without gap = feed after a fill "
                                            "made them whole.", namespace=ns, registry=r)
        self.emit_latency_seconds = Histogram(
            "emit_latency_seconds", "Seconds from window close to candle emission.",
            namespace=ns, registry=r, buckets=LATENCY_BUCKETS,
        )
        self.last_tick_age_seconds = Gauge("last_tick_age_seconds", "Seconds from the newest trade's event time to now "
                                           "(grows while no trade arrives).", namespace=ns, registry=r)
        self.last_tick_age_seconds.set_function(self._last_tick_age)

    def watch(self, feed: FeedStatus) -> None:
        """Export a source's feed state and accounting (see FeedCollector)."""
        self.feeds.feeds.append(feed)

    def _last_tick_age(self) -> float:
        """now - the newest event time seen (by this job or a watched source), seconds; 0 before any trade."""
        newest = max([t for t in [self._newest, *(f.last_trade for f in self.feeds.feeds)] if t is not None], default=None)
        return 0.0 if newest is None else max(0.0, (self.clock.now() - newest).total_seconds())

    def observe_ticks(self, ticks: pl.DataFrame, now: datetime | None = None) -> None:
        """Count ticks per (exchange, symbol) and remember the newest event time (`now` is unused: ages are
        computed when scraped)."""
        if ticks.height == 0:
            return
        counts = ticks.group_by(c.EXCHANGE, c.SYMBOL).len()
        for exchange, symbol, n in counts.iter_rows():
            self.ticks_total.labels(exchange=exchange, symbol=symbol).inc(n)
        newest = schema.newest(ticks.get_column(c.TIMESTAMP))
        if newest is not None and (self._newest is None or newest > self._newest):
            self._newest = newest

    def observe_candles(self, candles: pl.DataFrame) -> None:
        """Record the emit latency (latency_ms / 1000, seconds) of each emitted candle."""
        # Candles per batch are few (symbols x timeframes), so a loop here is not a per-tick loop.
        for latency_ms in candles.get_column(c.LATENCY_MS).drop_nulls().to_list():
            self.emit_latency_seconds.observe(max(0.0, latency_ms / 1000.0))

    def late_trades(self, count: int) -> None:
        """Count trades that arrived after their window was emitted (once per trade, not per timeframe)."""
        if count:
            self.late_trades_total.inc(count)

    def batch(self) -> None:
        """Count one processed micro-batch."""
        self.batches_total.inc()

    def rows_written(self, sink: str, kind: str, rows: int) -> None:
        """Count `rows` handed to `sink` for table `kind`."""
        if rows:
            self.rows_written_total.labels(sink=sink, kind=kind).inc(rows)

    def quarantined(self, rows: int = 1) -> None:
        """Count rows sent to quarantine."""
        if rows:
            self.quarantined_total.inc(rows)

    def healed(self, outcome: str, trades: int) -> None:
        """Count one gap's REST fill by outcome, and the trades it brought."""
        self.heals_total.labels(outcome).inc()
        if trades:
            self.healed_trades_total.inc(trades)

    def healed_windows(self, windows: int) -> None:
        """Count windows a heal made whole (emitted again without feed)."""
        if windows:
            self.healed_windows_total.inc(windows)

    def gap(self, count: int = 1) -> None:
        """Count detected feed gaps."""
        if count:
            self.gaps_total.inc(count)

    def snapshot(self) -> dict[str, float]:
        """Current totals as a flat dict (for the console status line and the health body)."""
        values: dict[str, float] = {}
        for family in self.registry.collect():
            for sample in family.samples:
                if sample.name.endswith(("_created", "_bucket")):
                    continue
                key = sample.name.removeprefix(f"{NAMESPACE}_")
                values[key] = values.get(key, 0.0) + sample.value
        return values


class BatchHealth:
    """Health of the stream: ok while the last batch is younger than `max_batch_age_s` and the watched feed has
    not been down longer than `max_feed_down_s`; else stale or feed down, with the reason."""

    def __init__(self, clock: Clock, max_batch_age_s: float = 30.0, *, feed: FeedStatus | None = None,
                 max_feed_down_s: float = DEFAULT_MAX_FEED_DOWN_S):
        """Start the grace period now (by `clock`); before the first batch the status is "starting"."""
        self.clock, self.max_batch_age_s = clock, max_batch_age_s
        self.feed, self.max_feed_down_s = feed, max_feed_down_s
        self.started_at = clock.now()
        self.last_batch_at: datetime | None = None
        self.batches = 0
        self._lock = threading.Lock()

    def mark_batch(self) -> None:
        """Record that a batch (even an empty one) was processed now."""
        with self._lock:
            self.last_batch_at = self.clock.now()
            self.batches += 1

    def __call__(self) -> dict:
        """{status: ok|starting|stale|feed down, reason (when unhealthy), last_batch_age_s, uptime_s, batches,
        max_batch_age_s, feed: {source, up, down_s, reason, reconnects} when a feed is watched}."""
        with self._lock:
            now = self.clock.now()
            uptime = (now - self.started_at).total_seconds()
            age = None if self.last_batch_at is None else (now - self.last_batch_at).total_seconds()
            reference = uptime if age is None else age
            body: dict = {"last_batch_age_s": age, "uptime_s": uptime, "batches": self.batches,
                          "max_batch_age_s": self.max_batch_age_s}
            feed = self.feed.snapshot() if self.feed is not None else None
            if reference > self.max_batch_age_s:
                body["status"], body["reason"] = "stale", f"no batch processed for {reference:.1f}s"
            elif feed is not None and feed["down_s"] > self.max_feed_down_s:
                body["status"] = FEED_DOWN
                body["reason"] = (f"feed {feed['source']} down for {feed['down_s']:.1f}s "
                                  f"(limit {self.max_feed_down_s:g}s): {feed['reason']}")
            else:
                body["status"] = "starting" if age is None else "ok"
            if feed is not None:
                body["feed"] = {k: feed[k] for k in ("source", "up", "down_s", "reason", "reconnects")}
                body["max_feed_down_s"] = self.max_feed_down_s
            return body
