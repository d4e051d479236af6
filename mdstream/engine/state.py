"""The one state every job carries between engine folds: per series, where its grid stands, its feature tail,
the trade windows it still needs and the gaps it knows of; and the one warm start that rebuilds it from stored
candles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import polars as pl

from ..contract import columns as c
from ..contract import timeframes as tfm
from ..contract.schema import CANDLE_BASE_SCHEMA, CANDLE_SCHEMA, TS, conform
from ..kernel import gaps as gp
from ..kernel.features import TAIL_ROWS, add_features, tail_state
from ..kernel.grid import SPARSE_COLUMNS, window_width_us

NEXT = "next_start"
STARTED = "started"
CURSOR_SCHEMA = pl.Schema({c.EXCHANGE: pl.String(), c.SYMBOL: pl.String(), c.TIMEFRAME: pl.String(), NEXT: TS,
                           c.CLOSE: pl.Float64(), STARTED: pl.Boolean()})
OPEN_SCHEMA = pl.Schema({name: CANDLE_BASE_SCHEMA[name] for name in SPARSE_COLUMNS})
SERIES = [c.EXCHANGE, c.SYMBOL]
WINDOW = [c.EXCHANGE, c.SYMBOL, c.TIMESTAMP_IN]


@dataclass(frozen=True)
class SeriesState:
    """What a fold needs from the folds before it, for every series at once.

    cursor: per (exchange, symbol, timeframe) the start of the next window to emit, the last close (the grid
        carries it into empty windows) and whether any window was emitted yet (a series enters the cursor with
        its first trade; until it starts, an earlier trade moves its first window back instead of revising);
    tail: the last rows of every series as add_features returns them (feature columns and their carried state);
    open: trade windows of the shortest timeframe that a window not yet emitted (or still revisable) is built from;
    gaps: intervals of missing data (gaps.GAP_SCHEMA; end null while the outage lasts; symbol null: all symbols).
    """

    cursor: pl.DataFrame
    tail: pl.DataFrame | None
    open: pl.DataFrame
    gaps: pl.DataFrame

    @staticmethod
    def empty() -> SeriesState:
        """No series yet."""
        return SeriesState(pl.DataFrame(schema=CURSOR_SCHEMA), None, pl.DataFrame(schema=OPEN_SCHEMA),
                           pl.DataFrame(schema=gp.GAP_SCHEMA))

    def evolve(self, **changes) -> SeriesState:
        """A copy with some fields replaced."""
        return replace(self, **changes)

    def series(self) -> int:
        """How many (exchange, symbol, timeframe) series the cursor holds."""
        return self.cursor.height

    def rows(self) -> int:
        """Rows held in all frames (the bound the stream keeps flat)."""
        tail = self.tail.height if self.tail is not None else 0
        return self.cursor.height + tail + self.open.height + self.gaps.height

    def only(self, exchange: str, symbol: str) -> SeriesState:
        """The state of one series: its rows of every frame, and the gaps of all its exchange's symbols."""
        mine = (pl.col(c.EXCHANGE) == exchange) & (pl.col(c.SYMBOL) == symbol)
        gaps = self.gaps.filter(pl.col(c.EXCHANGE).is_null() | (pl.col(c.EXCHANGE) == exchange))
        return SeriesState(self.cursor.filter(mine), self.tail.filter(mine) if self.tail is not None else None,
                           self.open.filter(mine), gaps.filter(pl.col(c.SYMBOL).is_null() | (pl.col(c.SYMBOL) == symbol)))


def merge(states: Sequence[SeriesState | None]) -> SeriesState:
    """One state holding several series' states (each of other series; None: a series not started): the engine
    folds them in one pass as it does a stream's symbols. A gap of all symbols is held once."""
    given = [s for s in states if s is not None]
    if not given:
        return SeriesState.empty()
    tails = [s.tail for s in given if s.tail is not None]
    return SeriesState(pl.concat([s.cursor for s in given]), pl.concat(tails, how="diagonal_relaxed") if tails else None,
                       pl.concat([s.open for s in given]), pl.concat([s.gaps for s in given]).unique(maintain_order=True))


def tail_rows(horizon_us: int, base_us: int) -> int:
    """Rows of tail a series keeps: the features' own need plus every window a revision may still reach."""
    return TAIL_ROWS + -(-horizon_us // base_us) + 2


def state_from_candles(candles: pl.DataFrame, timeframes: Sequence[str], *, tail_rows: int = TAIL_ROWS) -> SeriesState:
    """The state an unbroken run would hold after the stored `candles` (any revisions; the highest wins).

    The cursor continues after the newest stored window of each series; the tail is add_features over every
    stored row given, so cumulative state (vwap_day's day totals) is exact when the rows reach back to the UTC
    midnight of the newest window; the stored trade windows of the shortest timeframe become open windows, so a
    longer window that was still open when the earlier run stopped is rebuilt from them; a timeframe with no
    stored row yet starts at the window holding the series' first stored trade window."""
    names = tuple(sorted({tfm.normalize(t) for t in timeframes}, key=tfm.duration_us))
    state = SeriesState.empty()
    if candles.height == 0:
        return state
    latest = (conform(candles, CANDLE_SCHEMA).filter(pl.col(c.TIMEFRAME).is_in(list(names)))
              .sort(c.REVISION).unique([*c.SERIES_KEY, c.TIMESTAMP_IN], keep="last"))
    if latest.height == 0:
        return state
    featured = add_features(conform(latest, CANDLE_BASE_SCHEMA).lazy()).collect(engine="in-memory")
    width = window_width_us()
    last = latest.sort(c.TIMESTAMP_IN).group_by(list(c.SERIES_KEY)).agg(pl.col(c.TIMESTAMP_IN).last(), pl.col(c.CLOSE).last())
    cursor = last.select(c.EXCHANGE, c.SYMBOL, c.TIMEFRAME,
                         (pl.col(c.TIMESTAMP_IN).dt.epoch("us") + width).cast(TS).alias(NEXT), c.CLOSE,
                         pl.lit(True).alias(STARTED))
    base = latest.filter((pl.col(c.TIMEFRAME) == names[0]) & (pl.col(c.TRADES) > 0))
    if base.height:
        # Longer timeframes never stored yet start where the series' first stored trade window lies.
        firsts = base.group_by(SERIES).agg(pl.col(c.TIMESTAMP_IN).min().dt.epoch("us").alias("_first"))
        wanted = pl.DataFrame({c.TIMEFRAME: list(names)})
        missing = firsts.join(wanted, how="cross").join(cursor, on=list(c.SERIES_KEY), how="anti")
        if missing.height:
            cursor = pl.concat([cursor, missing.select(
                c.EXCHANGE, c.SYMBOL, c.TIMEFRAME, (pl.col("_first") // width * width).cast(TS).alias(NEXT),
                pl.lit(None, pl.Float64).alias(c.CLOSE), pl.lit(False).alias(STARTED))])
    cursor = cursor.select(list(CURSOR_SCHEMA)).cast(CURSOR_SCHEMA)
    # Open windows: stored trade windows a longer timeframe not yet emitted still needs.
    need = cursor.group_by(SERIES).agg(pl.col(NEXT).min().alias("_need"))
    open_ = base.join(need, on=SERIES).filter(pl.col(c.TIMESTAMP_IN) >= pl.col("_need"))
    return SeriesState(
        cursor=cursor,
        tail=tail_state(featured, tail_rows),
        open=open_.select(list(OPEN_SCHEMA)).cast(OPEN_SCHEMA),
        gaps=pl.DataFrame(schema=gp.GAP_SCHEMA),
    )
