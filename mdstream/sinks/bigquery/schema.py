"""BigQuery tables of the data contract: schemas with descriptions, partitioning, clustering, additive migration."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import pyarrow as pa

from ...contract import columns as c
from ...contract import schema as s
from ...contract.errors import SinkError
from ..base import CANDLES, QUARANTINE, TICKS
from .config import BigQueryConfig

_BQ_TYPES = {pl.String: "STRING", pl.Float64: "FLOAT64", pl.Int64: "INT64", pl.Datetime: "TIMESTAMP"}
_ARROW_TYPES = {pl.String: pa.string(), pl.Float64: pa.float64(), pl.Int64: pa.int64(),
                pl.Datetime: pa.timestamp("us", tz="UTC")}
REQUIRED = {c.EXCHANGE, c.SYMBOL, c.TIMEFRAME, c.TIMESTAMP_IN, c.REVISION, c.TIMESTAMP}


@dataclass(frozen=True)
class TableSpec:
    """One table: its Polars schema, day-partitioning column and clustering columns."""

    name: str
    schema: dict[str, pl.DataType]
    partition: str
    clustering: tuple[str, ...]
    description: str


TABLES: dict[str, TableSpec] = {
    CANDLES: TableSpec(CANDLES, s.CANDLE_SCHEMA, c.TIMESTAMP_IN, (c.EXCHANGE, c.SYMBOL, c.TIMEFRAME),
                       "Candles and features, one row per (exchange, symbol, timeframe, timestamp_in, revision)."),
    TICKS: TableSpec(TICKS, s.TICK_SCHEMA, c.TIMESTAMP, (c.EXCHANGE, c.SYMBOL),
                     "Trade ticks, one row per trade."),
    QUARANTINE: TableSpec(QUARANTINE, s.QUARANTINE_SCHEMA, c.Q_QUARANTINED_AT, (c.Q_SOURCE,),
                          "Input rows that could not become ticks, with the reason."),
}


def _base(dtype: pl.DataType) -> type[pl.DataType]:
    """The Polars dtype class of `dtype` (Datetime('us','UTC') -> pl.Datetime)."""
    return dtype.base_type() if hasattr(dtype, "base_type") else type(dtype)


def bq_type(dtype: pl.DataType) -> str:
    """BigQuery standard-SQL type of a Polars dtype."""
    return _BQ_TYPES[_base(dtype)]


def arrow_schema(spec: TableSpec) -> pa.Schema:
    """The Arrow schema sent to the Storage Write API (plain utf8 strings, timestamp[us, UTC])."""
    return pa.schema([pa.field(name, _ARROW_TYPES[_base(dtype)], nullable=name not in REQUIRED)
                      for name, dtype in spec.schema.items()])


def to_arrow(kind: str, frame: pl.DataFrame) -> pa.Table:
    """`frame` conformed to the table of `kind` as an Arrow table with the exact write schema."""
    spec = TABLES[kind]
    table = s.conform(frame, spec.schema).to_arrow()
    return table.cast(arrow_schema(spec))


def schema_fields(spec: TableSpec) -> list:
    """bigquery.SchemaField list with the contract's descriptions."""
    from google.cloud import bigquery

    return [bigquery.SchemaField(name, bq_type(dtype), mode="REQUIRED" if name in REQUIRED else "NULLABLE",
                                 description=s.DESCRIPTIONS.get(name, ""))
            for name, dtype in spec.schema.items()]


def _table(config: BigQueryConfig, spec: TableSpec):
    """The bigquery.Table to create for `spec`."""
    from google.cloud import bigquery

    table = bigquery.Table(config.table_id(spec.name), schema=schema_fields(spec))
    table.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY, field=spec.partition)
    table.clustering_fields = list(spec.clustering)
    table.description = spec.description
    return table


def ensure_tables(client, config: BigQueryConfig, *, retry=None, timeout: float | None = None) -> dict[str, list[str]]:
    """Create the dataset and tables if missing and add new columns; {table: [added columns]}."""
    from google.api_core.exceptions import NotFound
    from google.cloud import bigquery

    dataset = bigquery.Dataset(f"{config.project}.{config.dataset}")
    dataset.location = config.location
    client.create_dataset(dataset, exists_ok=True, retry=retry, timeout=timeout)
    added: dict[str, list[str]] = {}
    for spec in TABLES.values():
        try:
            existing = client.get_table(config.table_id(spec.name), retry=retry, timeout=timeout)
        except NotFound:
            client.create_table(_table(config, spec), exists_ok=True, retry=retry, timeout=timeout)
            added[spec.name] = []
            continue
        added[spec.name] = _migrate(client, existing, spec, retry=retry, timeout=timeout)
    return added


def _migrate(client, existing, spec: TableSpec, *, retry, timeout) -> list[str]:
    """Append columns of `spec` missing from `existing` (NULLABLE, so old rows read as null); refuse type changes."""
    have = {f.name: f for f in existing.schema}
    wanted = schema_fields(spec)
    for field in wanted:
        old = have.get(field.name)
        if old is not None and _same_type(old.field_type) != _same_type(field.field_type):
            raise SinkError(f"BigQuery table {existing.table_id}: column {field.name} is {old.field_type}, "
                            f"expected {field.field_type}; only additive changes migrate automatically")
    new = [f for f in wanted if f.name not in have]
    if not new:
        return []
    from google.cloud import bigquery

    # A column added to an existing table must be NULLABLE: its old rows have no value.
    added = [bigquery.SchemaField(f.name, f.field_type, mode="NULLABLE", description=f.description) for f in new]
    existing.schema = list(existing.schema) + added
    client.update_table(existing, ["schema"], retry=retry, timeout=timeout)
    return [f.name for f in new]


def _same_type(name: str) -> str:
    """Legacy and standard names of one BigQuery type compare equal (FLOAT/FLOAT64, INTEGER/INT64)."""
    return {"FLOAT": "FLOAT64", "INTEGER": "INT64", "BOOLEAN": "BOOL"}.get(name, name)
