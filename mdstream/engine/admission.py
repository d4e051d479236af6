"""Admission of a stream batch: ticks whose time cannot be trusted or can no longer change a candle are
quarantined with their reason before they touch any state (so they never move the watermark)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from ..contract import columns as c
from ..contract.schema import QUARANTINE_SCHEMA, TS

_REASON = "_reason"
_RESUME = "_resume"


@dataclass(frozen=True)
class Band:
    """The plausibility band of event times: at most `max_skew_us` ahead of the clock (live: the wall clock now;
    replay: the tick's recorded receive time) and at most `horizon_us` older than its own receive time (live, the
    wall clock when it arrived; the batch time when a source gives none)."""

    live: bool
    horizon_us: int
    max_skew_us: int


@dataclass
class Screened:
    """One batch after admission: ticks to fold in, quarantine rows, ticks already folded by an earlier run."""

    ticks: pl.DataFrame
    quarantine: pl.DataFrame
    resumed: int = 0  # replay only: ticks before where an earlier run's output ends (already in the sink)


def screen(ticks: pl.DataFrame, band: Band, *, now_us: int, floor_us: int | None,
           resume: pl.DataFrame | None, now) -> Screened:
    """Split `ticks` by the first reason that applies to each: implausibly far ahead of the clock, older than the
    horizon on arrival, behind the revision floor (floor_us: the oldest time a window can still be revised), or
    inside a window an earlier run wrote (`resume`: exchange, symbol, _resume us). One query for the batch."""
    ts = pl.col(c.TIMESTAMP).dt.epoch("us")
    received = pl.col(c.LOCAL_TIMESTAMP).dt.epoch("us")
    clock = pl.lit(now_us) if band.live else received
    if band.live:
        received = pl.min_horizontal(received.fill_null(now_us), pl.lit(now_us))
    where = "the wall clock" if band.live else "its receive time"
    skew_s, horizon_s = band.max_skew_us / 1e6, band.horizon_us / 1e6
    reason = (
        pl.when(ts > clock + band.max_skew_us)
        .then(pl.lit(f"implausible event time: more than {skew_s:g}s ahead of {where}"))
        .when(ts < received - band.horizon_us)
        .then(pl.lit(f"implausible event time: older than the revision horizon ({horizon_s:g}s) on arrival"))
    )
    if floor_us is not None:
        reason = reason.when(ts < floor_us).then(pl.lit(f"trade arrived after its window's revision horizon ({horizon_s:g}s)"))
    frame = ticks
    if resume is not None and resume.height:
        frame = frame.join(resume, on=[c.EXCHANGE, c.SYMBOL], how="left", maintain_order="left")
        reason = reason.when(ts < pl.col(_RESUME)).then(pl.lit(EARLIER_RUN))
    frame = frame.with_columns(reason.otherwise(pl.lit(None, pl.String)).alias(_REASON))
    if frame.get_column(_REASON).null_count() == frame.height:
        return Screened(ticks, QUARANTINE_EMPTY)
    bad = frame.filter(pl.col(_REASON).is_not_null())
    good = frame.filter(pl.col(_REASON).is_null()).select(ticks.columns)
    resumed = 0
    if not band.live:
        # A replay reads its input again from the start: what an earlier run folded is a duplicate, not a loss.
        again = bad.get_column(_REASON) == EARLIER_RUN
        resumed = int(again.sum())
        bad = bad.filter(~again)
    return Screened(good, quarantine_rows(bad, now, pl.col(_REASON)), resumed)


EARLIER_RUN = "its window was written by an earlier run"
QUARANTINE_EMPTY = pl.DataFrame(schema=QUARANTINE_SCHEMA)


def quarantine_rows(ticks: pl.DataFrame, now, reason: str | pl.Expr) -> pl.DataFrame:
    """Quarantine rows of ticks the engine cannot use: kept and counted, never silently dropped."""
    return ticks.select(
        pl.format("{}/{}", c.EXCHANGE, c.SYMBOL).alias(c.Q_SOURCE), pl.lit(None, pl.Int64).alias(c.Q_LINE),
        pl.lit(c.TIMESTAMP).alias(c.Q_FIELD), (reason if isinstance(reason, pl.Expr) else pl.lit(reason)).alias(c.Q_REASON),
        pl.format("{} {} {} {} {}", c.ID, pl.col(c.TIMESTAMP).dt.epoch("us"), pl.col(c.LOCAL_TIMESTAMP).dt.epoch("us"),
                  c.PRICE, c.AMOUNT).alias(c.Q_RAW),
        pl.lit(now).cast(TS).alias(c.Q_QUARANTINED_AT),
    ).cast(QUARANTINE_SCHEMA)
