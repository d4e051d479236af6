"""Progress of a stream run: per-source accounting, the run's counters, and the checkpoint file that carries
totals across runs."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..contract.errors import ConfigError

CHECKPOINT_VERSION = 2


@dataclass
class SourceCounts:
    """Accounting of one source: received = accepted + quarantined + duplicates + sum(ignored)."""

    received: int = 0
    accepted: int = 0
    quarantined: int = 0
    duplicates: int = 0
    ignored: dict[str, int] = field(default_factory=dict)

    def unaccounted(self) -> int:
        """received - (accepted + quarantined + duplicates + ignored): 0 when every record is accounted for."""
        return self.received - (self.accepted + self.quarantined + self.duplicates + sum(self.ignored.values()))

    def add(self, other: SourceCounts) -> None:
        """Add `other`'s counts to these."""
        self.received += other.received
        self.accepted += other.accepted
        self.quarantined += other.quarantined
        self.duplicates += other.duplicates
        for kind, n in other.ignored.items():
            self.ignored[kind] = self.ignored.get(kind, 0) + n


@dataclass
class StreamStats:
    """Counters of a run, shown on the status line and in the closing summary (`ticks` = trades accepted)."""

    ticks: int = 0
    batches: int = 0
    candles: int = 0
    revisions: int = 0
    late_trades: int = 0
    quarantined: int = 0
    duplicates: int = 0
    received: int = 0
    ignored: int = 0
    gaps: int = 0
    rows_written: int = 0
    sources: dict[str, SourceCounts] = field(default_factory=dict)
    quarantined_by: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def count(self, source: str, counts: SourceCounts, reasons: dict[str, int]) -> None:
        """Add one batch's accounting of `source`."""
        self.sources.setdefault(source, SourceCounts()).add(counts)
        self.ticks += counts.accepted
        self.quarantined += counts.quarantined
        self.duplicates += counts.duplicates
        self.received += counts.received
        self.ignored += sum(counts.ignored.values())
        for reason, n in reasons.items():
            self.quarantined_by[reason] = self.quarantined_by.get(reason, 0) + n

    def as_dict(self, sink: Any = None) -> dict[str, Any]:
        """The counters plus ticks/s, per-source accounting and the sink's own summary line."""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        out = {k: v for k, v in self.__dict__.items() if k not in ("started", "sources")}
        out["sources"] = {name: {**s.__dict__, "unaccounted": s.unaccounted()} for name, s in self.sources.items()}
        out["ticks_per_s"] = round(self.ticks / elapsed, 1)
        out["elapsed_s"] = round(elapsed, 1)
        if sink is not None and hasattr(sink, "summary"):
            out["sink"] = sink.summary()
        return out


def write_checkpoint(path: Path, state: dict) -> None:
    """Write `state` as JSON atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(state, default=str, indent=1))
    tmp.replace(path)


def read_checkpoint(path: Path, exchange: str, timeframes: tuple[str, ...]) -> dict[str, Any]:
    """The totals of the runs before this one, from the checkpoint at `path` ({} when there is none yet); a
    checkpoint of another exchange or other timeframes is a ConfigError (it belongs to another job)."""
    if not path.exists():
        return {}
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"checkpoint {path} is unreadable: {exc}") from exc
    if state.get("version") != CHECKPOINT_VERSION:
        return {}  # an older format: totals start again
    if state.get("exchange") != exchange or tuple(state.get("timeframes", ())) != tuple(timeframes):
        raise ConfigError(f"checkpoint {path} belongs to another job ({state.get('exchange')} "
                          f"{','.join(state.get('timeframes', []))}); use another --checkpoint file")
    return state.get("totals", {})


TOTALS = ("ticks", "received", "quarantined", "duplicates", "ignored", "candles", "revisions", "gaps", "rows_written")


def add_totals(before: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    """Totals across every run sharing the checkpoint: earlier runs' plus this run's, and how many runs."""
    out = {k: int(before.get(k, 0)) + int(run.get(k, 0)) for k in TOTALS}
    out["runs"] = int(before.get("runs", 0)) + 1
    return out
