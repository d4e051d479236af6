"""Build the sink a command asked for from its options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..contract.errors import ConfigError

SINK_NAMES = ("duckdb", "parquet", "bigquery")


@dataclass(frozen=True)
class SinkOptions:
    """Where output goes: the DuckDB file (default), a Parquet folder, or BigQuery."""

    kind: str = "duckdb"
    duckdb_path: Path = Path("./mdstream.duckdb")
    parquet_dir: Path = Path("./parquet")
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
    """A Sink (and DaySink) for `opts`; mode is "backfill" or "stream" (BigQuery picks its stream type by it)."""
    if opts.kind == "duckdb":
        from .duckdb import DuckDBSink

        # A stream runs for days: it holds the file only while writing, so queries can read in between.
        # A backfill opens the file while it reads its first input.
        return DuckDBSink(opts.duckdb_path, shared=mode == "stream", background=mode == "backfill")
    if opts.kind == "parquet":
        from .parquet import ParquetSink

        return ParquetSink(opts.parquet_dir)
    if opts.kind == "bigquery":
        from .bigquery import open_sink as open_bigquery

        return open_bigquery(opts.bigquery_config(), mode=mode)
    raise ConfigError(f"unknown sink {opts.kind!r}; choose from {', '.join(SINK_NAMES)}")
