"""Access to the SQL files under sql/ (shipped as the package mdstream.sql), with the timeframe and feature registries
filled in."""

from __future__ import annotations

from importlib import resources
from string import Template

from ..contract import features
from ..contract.timeframes import REGISTRY


def read(relative: str) -> str:
    """Text of sql/<relative>, e.g. read("duckdb/candles_from_ticks.sql"), with ${timeframe_widths},
    ${timeframe_views} and ${feature_columns} rendered from the registries (other $names, such as query
    parameters, are left alone)."""
    text = resources.files("mdstream.sql").joinpath(relative).read_text(encoding="utf-8")
    dialect = relative.split("/", 1)[0]
    return Template(text).safe_substitute(timeframe_widths=timeframe_widths(), timeframe_views=timeframe_views(dialect),
                                          feature_columns=features.sql_list())


def names(folder: str) -> list[str]:
    """Sorted file names (*.sql) in sql/<folder>."""
    return sorted(p.name for p in resources.files("mdstream.sql").joinpath(folder).iterdir() if p.name.endswith(".sql"))


def timeframe_widths() -> str:
    """SQL VALUES rows (timeframe, width in µs) of every registered timeframe."""
    return ", ".join(f"('{tf.name}', {tf.width_us}::BIGINT)" for tf in REGISTRY)


def view_names() -> tuple[str, ...]:
    """candles_<timeframe> of every registered timeframe."""
    return tuple(f"candles_{tf.name}" for tf in REGISTRY)


def timeframe_views(dialect: str) -> str:
    """One `candles_<tf>` view per registered timeframe over candles_latest (BigQuery names keep ${project}.${dataset})."""
    if dialect == "bigquery":
        line = ("CREATE OR REPLACE VIEW `${project}.${dataset}.candles_%s` AS "
                "SELECT * FROM `${project}.${dataset}.candles_latest` WHERE timeframe = '%s';")
    else:
        line = "CREATE OR REPLACE VIEW candles_%s AS SELECT * FROM candles_latest WHERE timeframe = '%s';"
    return "\n".join(line % (tf.name, tf.name) for tf in REGISTRY)
