"""Access to the SQL files under sql/ (shipped as the package mdstream.sql)."""

from __future__ import annotations

from importlib import resources


def read(relative: str) -> str:
    """Text of sql/<relative>, e.g. read("duckdb/candles_from_ticks.sql")."""
    return resources.files("mdstream.sql").joinpath(relative).read_text(encoding="utf-8")


def names(folder: str) -> list[str]:
    """Sorted file names (*.sql) in sql/<folder>."""
    return sorted(p.name for p in resources.files("mdstream.sql").joinpath(folder).iterdir() if p.name.endswith(".sql"))
