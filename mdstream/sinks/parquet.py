"""Parquet sink: hive-partitioned files readable by DuckDB, Polars, BigQuery external tables and Spark.

Layout under `root`:
    candles/exchange=X/symbol=Y/timeframe=Z/date=YYYY-MM-DD/part.parquet        (backfill day)
    candles/exchange=X/symbol=Y/timeframe=Z/date=YYYY-MM-DD/part-<seq>.parquet   (stream batches)
    ticks/exchange=X/symbol=Y/date=YYYY-MM-DD/part[-<seq>].parquet
    quarantine/date=YYYY-MM-DD/day-<exchange>-<symbol>.parquet | part-<seq>.parquet
Partition columns live only in the paths. A day (or a stream batch) is all or nothing: every file of it is
first written under root/.staging/<token>/ (outside the trees readers glob), then a commit journal listing
the moves is written, then the files are renamed into place and the day's older files removed. A failure
before the journal (a full disk, say) leaves nothing visible and nothing behind; a crash after it is rolled
forward by the next ParquetSink opened on the root. Stream batches append files; the same key may then exist in several files (a
re-sent batch, or a later revision), so readers take the latest revision per key: `read_candles` below,
or in SQL `QUALIFY row_number() OVER (PARTITION BY exchange, symbol, timeframe, timestamp_in
ORDER BY revision DESC, timestamp_out DESC) = 1` over read_parquet(..., hive_partitioning = true).
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import polars as pl

from ..contract import columns as c
from ..contract import schema
from ..contract.errors import ConfigError, SinkError
from ..contract.timeframes import day_bounds
from . import base, failures
from .parquet_commit import Commit, recover, write_file

DATE = "date"
# Partition columns of each kind, outermost first (DATE is derived from the event time).
PARTITIONS: dict[str, tuple[str, ...]] = {
    base.CANDLES: (c.EXCHANGE, c.SYMBOL, c.TIMEFRAME, DATE),
    base.TICKS: (c.EXCHANGE, c.SYMBOL, DATE),
    base.QUARANTINE: (DATE,),
}
EVENT_TIME = {base.CANDLES: c.TIMESTAMP_IN, base.TICKS: c.TIMESTAMP, base.QUARANTINE: c.Q_QUARANTINED_AT}
SCHEMAS = base.SCHEMAS


def partition_dir(root: Path, kind: str, values: dict[str, str]) -> Path:
    """Folder of one partition: root/kind/col=value/... (values percent-encoded so '/' cannot nest)."""
    folder = root / kind
    for column in PARTITIONS[kind]:
        folder = folder / f"{column}={quote(str(values[column]), safe='-_.')}"
    return folder


def write_atomic(frame: pl.DataFrame, target: Path) -> None:
    """Write `frame` to `target` through a temporary file in the same folder and an atomic rename."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_file(frame, temporary)
        os.replace(temporary, target)
    except (OSError, pl.exceptions.PolarsError) as exc:
        temporary.unlink(missing_ok=True)
        raise _failure(exc, f"write of {target}") from exc


def _failure(exc: BaseException, what: str) -> SinkError:
    """An OS or Polars error as one line naming the root cause (see failures.sink_error)."""
    return failures.sink_error(exc, f"Parquet {what}")


def split(kind: str, frame: pl.DataFrame) -> list[tuple[dict[str, str], pl.DataFrame]]:
    """(partition values, rows without the partition columns) for every partition present in `frame`."""
    if kind not in SCHEMAS:
        raise ConfigError(f"unknown kind {kind!r}; expected one of {', '.join(base.KINDS)}")
    frame = schema.conform(frame, SCHEMAS[kind]).with_columns(
        pl.col(EVENT_TIME[kind]).dt.date().cast(pl.String).fill_null("unknown").alias(DATE)
    )
    keys = list(PARTITIONS[kind])
    parts = []
    for values, rows in frame.group_by(keys, maintain_order=True):
        parts.append((dict(zip(keys, (str(v) for v in values))), rows.drop(keys)))
    return parts


class ParquetSink:
    """Sink into a hive-partitioned Parquet tree under `root`; its candles read back."""

    capabilities = frozenset({base.WRITE_DAY, base.READ_BACK})

    def __init__(self, root: str | Path, *, run_id: str | None = None):
        """Stream files of this process are named part-<run_id>-<seq>; the default run id sorts by start time."""
        self.root = Path(root)
        self.run_id = run_id or f"{time.time_ns():020d}"
        self._seq = 0
        self._buffer = base.KindBuffer()
        self.rows_written: dict[str, int] = {kind: 0 for kind in base.KINDS}
        recover(self.root)

    def discard(self) -> None:
        """Forget what is buffered (its owner keeps it elsewhere)."""
        self._buffer.clear()

    def _commit(self, files: list[tuple[pl.DataFrame, Path]], remove: list[Path], what: str) -> None:
        """Stage `files`, then move them into place and delete `remove`, all or nothing (see Commit)."""
        commit = Commit(self.root)
        try:
            for frame, target in files:
                commit.stage(frame, target)
            commit.apply(remove)
        except (OSError, pl.exceptions.PolarsError) as exc:
            commit.abandon()
            raise _failure(exc, f"{what} (nothing applied) under {self.root}") from exc
        except BaseException:
            commit.abandon()
            raise

    def write(self, kind: str, frame: pl.DataFrame) -> None:
        """Buffer `frame` of `kind` until flush()."""
        self._buffer.add(kind, frame)

    def flush(self) -> None:
        """Write one new file per touched partition, named by the batch sequence number, all in one commit;
        on failure nothing is visible and the buffer is kept."""
        batches = self._buffer.pending()
        if not batches:
            return
        name = f"part-{self.run_id}-{self._seq + 1:06d}.parquet"
        files = [(rows, partition_dir(self.root, kind, values) / name)
                 for kind, frame in batches.items() for values, rows in split(kind, frame)]
        self._commit(files, [], "write of a batch")
        self._seq += 1
        for kind, frame in batches.items():
            self.rows_written[kind] += frame.height
        self._buffer.clear()

    def write_day(self, exchange: str, symbol: str, day: str, frames: dict[str, pl.DataFrame]) -> None:
        """Replace (exchange, symbol, day): new part.parquet files renamed into place, then older files removed."""
        start, _ = day_bounds(day)
        day_text = start.date().isoformat()
        files: list[tuple[pl.DataFrame, Path]] = []
        for kind, frame in frames.items():
            frame = schema.conform(frame, SCHEMAS[kind]) if kind in SCHEMAS else frame
            if kind == base.QUARANTINE:
                name = f"day-{quote(exchange, safe='-_.')}-{quote(symbol, safe='-_.')}.parquet"
                target = partition_dir(self.root, kind, {DATE: day_text}) / name
                files.append((frame, target))
                continue
            for values, rows in split(kind, frame):
                if (values[c.EXCHANGE], values[c.SYMBOL], values[DATE]) != (exchange, symbol, day_text):
                    raise SinkError(f"{kind} row of {values} does not belong to {exchange} {symbol} {day_text}")
                files.append((rows, partition_dir(self.root, kind, values) / "part.parquet"))
        written = {target for _, target in files}
        self._commit(files, self._stale(exchange, symbol, day_text, written), f"write of {exchange} {symbol} {day_text}")
        for kind, frame in frames.items():
            self.rows_written[kind] += frame.height

    def close(self) -> None:
        """Flush what is buffered."""
        self.flush()

    def read_candles(self, *, exchange: str, symbols=None, timeframes=(), rows: int = base.WARM_ROWS,
                     before: datetime | None = None) -> pl.DataFrame:
        """CandleReader: per series the newest `rows` windows and every window since the UTC midnight of its
        newest one (latest revisions), of windows starting before `before` when given."""
        if not (self.root / base.CANDLES).is_dir():
            return schema.empty(schema.CANDLE_SCHEMA)
        where = pl.col(c.EXCHANGE) == exchange
        if symbols:
            where &= pl.col(c.SYMBOL).is_in(list(symbols))
        if timeframes:
            where &= pl.col(c.TIMEFRAME).is_in(list(timeframes))
        if before is not None:
            where &= pl.col(c.TIMESTAMP_IN) < before
        window = [c.EXCHANGE, c.SYMBOL, c.TIMEFRAME, c.TIMESTAMP_IN]
        latest = (scan(self.root, base.CANDLES).filter(where)
                  .sort([c.REVISION, c.TIMESTAMP_OUT], descending=True, nulls_last=True)
                  .unique(subset=window, keep="first"))
        return schema.conform(base.newest_windows(latest, rows).collect(), schema.CANDLE_SCHEMA)

    def summary(self) -> str:
        """One line: rows written per kind and the root folder."""
        counts = ", ".join(f"{n:,} {kind}" for kind, n in self.rows_written.items() if n)
        return f"Parquet {self.root}: {counts or 'nothing'} written"

    def _stale(self, exchange: str, symbol: str, day: str, keep: set[Path]) -> list[Path]:
        """The day's files of this exchange and symbol that the current write_day does not write."""
        values = {c.EXCHANGE: exchange, c.SYMBOL: symbol, DATE: day}
        candle_days = (partition_dir(self.root, base.CANDLES, {**values, c.TIMEFRAME: tf}) for tf in self._timeframes(values))
        return [path for folder in [*candle_days, partition_dir(self.root, base.TICKS, values)]
                for path in folder.glob("*.parquet") if path not in keep]

    def _timeframes(self, values: dict[str, str]) -> list[str]:
        """Timeframes that have a folder for this exchange and symbol."""
        folder = partition_dir(self.root, base.CANDLES, {**values, c.TIMEFRAME: "x", DATE: "x"}).parent.parent
        prefix = f"{c.TIMEFRAME}="
        return [p.name[len(prefix):] for p in folder.glob(f"{prefix}*")] if folder.is_dir() else []


def scan(root: str | Path, kind: str) -> pl.LazyFrame:
    """All files of `kind` under `root` as one LazyFrame with the contract's columns (partition columns restored)."""
    pattern = str(Path(root) / kind / "**" / "*.parquet")
    partitions = PARTITIONS[kind]
    # The full schema is given so files written before a column was added still read (the column is null).
    frame = pl.scan_parquet(
        pattern,
        hive_partitioning=True,
        hive_schema={name: pl.Date() if name == DATE else pl.String() for name in partitions},
        schema={name: dtype for name, dtype in SCHEMAS[kind].items() if name not in partitions},
        missing_columns="insert",
        extra_columns="ignore",
    )
    return frame.select(list(SCHEMAS[kind]))


def read_candles(root: str | Path) -> pl.LazyFrame:
    """candles_latest semantics over the Parquet tree: one row per window key, the highest revision; files
    written before base_volume existed read it as volume, the rule their rows were computed with (as the views)."""
    window = [c.EXCHANGE, c.SYMBOL, c.TIMEFRAME, c.TIMESTAMP_IN]
    return (
        scan(root, base.CANDLES)
        .with_columns(pl.coalesce(c.BASE_VOLUME, c.VOLUME).alias(c.BASE_VOLUME))
        .sort([c.REVISION, c.TIMESTAMP_OUT], descending=True, nulls_last=True)
        .unique(subset=window, keep="first")
        .sort(window)
    )
