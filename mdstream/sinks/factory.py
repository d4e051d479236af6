"""Build the sink a command asked for from its options."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..contract.errors import ConfigError

SINK_NAMES = ("duckdb", "parquet", "bigquery")


@dataclass(frozen=True)
class SinkOptions:
    """Where output goes: the DuckDB file (default), a Parquet folder, or BigQuery."""

    kind: str = "duckdb"
    duckdb_path: Path = Path("mdstream.duckdb")
    parquet_dir: Path = Path("parquet")
    bq_project: str | None = None
    bq_dataset: str | None = None
    bq_location: str | None = None
    bq_api_endpoint: str | None = None
    bq_write_endpoint: str | None = None

    def bigquery_config(self):
        """The BigQueryConfig of these flags; unset ones fall back to the environment and defaults."""
        from .bigquery import BigQueryConfig

        overrides = {
            "project": self.bq_project,
            "dataset": self.bq_dataset,
            "location": self.bq_location,
            "api_endpoint": self.bq_api_endpoint,
            "write_endpoint": self.bq_write_endpoint,
        }
        return BigQueryConfig.from_env(**{k: v for k, v in overrides.items() if v is not None})


def open_sink(opts: SinkOptions, *, mode: str):
    """A Sink (and DaySink) for `opts`; mode is "backfill" or "stream". A stream's sink is wrapped in a
    ResilientSink: a locked file, a full disk or an unreachable BigQuery make it keep its rows and retry
    instead of failing (BigQuery writes on a thread, so its set-up never stalls the stream)."""
    if mode == "stream":
        from .resilient import ResilientSink

        return ResilientSink(lambda: _open(opts, mode), spool_folder(opts), background=opts.kind == "bigquery")
    return _open(opts, mode)


def spool_folder(opts: SinkOptions) -> Path:
    """Where a stream keeps the rows its sink could not take yet: beside the DuckDB file, inside the Parquet
    root (a hidden folder readers skip), or in the BigQuery spool folder."""
    if opts.kind == "duckdb":
        return opts.duckdb_path.with_name(opts.duckdb_path.name + ".spool")
    if opts.kind == "parquet":
        return opts.parquet_dir / ".spool"
    return opts.bigquery_config().spool_dir / "waiting"


def _open(opts: SinkOptions, mode: str):
    """The sink itself."""
    if opts.kind == "duckdb":
        def duckdb_sink():
            """The DuckDB sink (importing duckdb)."""
            from .duckdb import DuckDBSink

            # A stream runs for days: it holds the file only while writing, so queries can read in between.
            # A backfill opens the file while it reads its first input; an open that fails is raised by the
            # first operation, and a command that fails before writing leaves no empty file behind.
            return DuckDBSink(opts.duckdb_path, shared=mode == "stream", background=mode == "backfill",
                              remove_unused=True)

        # A backfill imports duckdb on a thread too, while its first input is read (the read leaves the
        # interpreter free).
        return Opening(duckdb_sink) if mode == "backfill" else duckdb_sink()
    if opts.kind == "parquet":
        from .parquet import ParquetSink

        return ParquetSink(opts.parquet_dir)
    if opts.kind == "bigquery":
        from .bigquery import open_sink as open_bigquery

        return open_bigquery(opts.bigquery_config(), mode=mode)
    raise ConfigError(f"unknown sink {opts.kind!r}; choose from {', '.join(SINK_NAMES)}")


class Opening:
    """A sink being opened on a thread, its imports included: the first attribute asked of it waits for the open
    and raises its error, if any."""

    def __init__(self, open_: Callable[[], Any]):
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sink-open")
        self._future = pool.submit(open_)
        pool.shutdown(wait=False)

    def __getattr__(self, name: str) -> Any:
        """`name` of the opened sink."""
        return getattr(self._future.result(), name)
