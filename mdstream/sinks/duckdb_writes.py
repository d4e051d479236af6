"""The SQL of the DuckDB sink: conforming a batch, idempotent inserts by kind, a day's replacement, the warm read.
Each function runs on the connection it is given, inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime

import duckdb
import polars as pl

from ..contract import columns as c
from ..contract import schema
from ..contract.errors import ConfigError
from ..contract.timeframes import US_PER_DAY
from . import base
from .duckdb_schema import BATCH as _BATCH
from .duckdb_schema import quietly_unregister


def prepare(kind: str, frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` conformed to the schema of `kind`, deduplicated by its key (the last copy of a key wins)."""
    if kind not in base.SCHEMAS:
        raise ConfigError(f"unknown kind {kind!r}; expected one of {', '.join(base.KINDS)}")
    frame = schema.conform(frame, base.SCHEMAS[kind])
    if kind == base.CANDLES:
        return frame.unique(subset=list(c.CANDLE_KEY), keep="last", maintain_order=True)
    if kind == base.TICKS:
        # rows keep their arrival order: it is the last tie-breaker of open/close in candles_from_ticks.sql
        first = pl.col(c.ID).is_first_distinct().over(c.EXCHANGE, c.SYMBOL)
        return frame.filter(pl.col(c.ID).is_null() | first)
    return frame.unique(keep="first", maintain_order=True)


def _register(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame) -> None:
    """Expose `frame` to SQL as the relation _mdstream_batch (zero-copy Arrow, through the C stream interface)."""
    con.register(_BATCH, schema.ArrowView(frame))


def insert(con: duckdb.DuckDBPyConnection, kind: str, frame: pl.DataFrame) -> None:
    """Plain insert of an already prepared frame."""
    if not frame.height:
        return
    _register(con, frame)
    try:
        con.execute(f"INSERT INTO {kind} BY NAME SELECT * FROM {_BATCH}")
    finally:
        quietly_unregister(con)


def upsert(con: duckdb.DuckDBPyConnection, kind: str, frame: pl.DataFrame) -> None:
    """Idempotent insert: candles replace their key, ticks and quarantine rows already stored are skipped."""
    if not frame.height:
        return
    _register(con, frame)
    try:
        if kind == base.CANDLES:
            lo, hi = frame[c.TIMESTAMP_IN].min(), frame[c.TIMESTAMP_IN].max()
            match = " AND ".join(f't."{k}" = b."{k}"' for k in c.CANDLE_KEY)
            # the constant range lets DuckDB skip row groups by their min/max before the join
            con.execute(
                f"DELETE FROM candles AS t USING {_BATCH} AS b WHERE t.timestamp_in BETWEEN $lo AND $hi AND {match}",
                {"lo": lo, "hi": hi},
            )
            con.execute(f"INSERT INTO candles BY NAME SELECT * FROM {_BATCH}")
        elif kind == base.TICKS:
            lo, hi = frame[c.TIMESTAMP].min(), frame[c.TIMESTAMP].max()
            # a duplicate trade has the same event time, so only that time range needs probing
            con.execute(
                f"""INSERT INTO ticks BY NAME SELECT * FROM {_BATCH} AS b
                WHERE b.id IS NULL OR NOT EXISTS (
                    SELECT 1 FROM ticks AS t WHERE t.timestamp BETWEEN $lo AND $hi
                    AND t.exchange = b.exchange AND t.symbol = b.symbol AND t.id = b.id)""",
                {"lo": lo, "hi": hi},
            )
        else:
            same = " AND ".join(f't."{k}" IS NOT DISTINCT FROM b."{k}"' for k in (c.Q_SOURCE, c.Q_LINE, c.Q_FIELD, c.Q_RAW))
            con.execute(
                f"INSERT INTO quarantine BY NAME SELECT * FROM {_BATCH} AS b "
                f"WHERE NOT EXISTS (SELECT 1 FROM quarantine AS t WHERE {same})"
            )
    finally:
        quietly_unregister(con)


def delete_day(con: duckdb.DuckDBPyConnection, exchange: str, symbol: str, day, start: datetime, end: datetime,
               quarantine: pl.DataFrame | None) -> None:
    """Delete the candles (by timestamp_in), ticks (by timestamp) and quarantine rows of one day."""
    params = {"exchange": exchange, "symbol": symbol, "start": start, "end": end}
    for table, column in ((base.CANDLES, c.TIMESTAMP_IN), (base.TICKS, c.TIMESTAMP)):
        con.execute(
            f"DELETE FROM {table} WHERE exchange = $exchange AND symbol = $symbol "
            f'AND "{column}" >= $start AND "{column}" < $end',
            params,
        )
    # Quarantine rows carry no exchange/symbol: a day owns the rows of the sources it quarantines now,
    # and of earlier sources whose name carries both the symbol and the day (dataset file names do).
    sources = [] if quarantine is None else quarantine[c.Q_SOURCE].drop_nulls().unique().to_list()
    con.execute(
        "DELETE FROM quarantine WHERE list_contains($sources, source) "
        "OR (contains(lower(source), lower($symbol)) AND contains(source, $day))",
        {"sources": sources, "symbol": symbol, "day": str(day)},
    )


def warm_query(exchange: str, symbols, timeframes, rows: int, before: datetime | None) -> tuple[str, str, list[object]]:
    """(query, probe, parameters) of the warm read: per series the newest `rows` windows and every window since the UTC
    midnight of its newest one (latest revisions), of windows starting before `before` when given; the probe finds
    whether any candle matches at all."""
    where: list[str] = ["exchange = ?"]
    params: list[object] = [exchange]
    if symbols:
        where.append(f"symbol IN ({', '.join('?' for _ in symbols)})")
        params.extend(symbols)
    if timeframes:
        where.append(f"timeframe IN ({', '.join('?' for _ in timeframes)})")
        params.extend(timeframes)
    if before is not None:
        where.append("timestamp_in < ?")
        params.append(before)
    series = "PARTITION BY exchange, symbol, timeframe"
    sql = (
        f"SELECT * FROM candles_latest WHERE {' AND '.join(where)} "
        f"QUALIFY row_number() OVER ({series} ORDER BY timestamp_in DESC) <= {int(rows)} "
        f"OR epoch_us(timestamp_in) >= max(epoch_us(timestamp_in)) OVER ({series}) // {US_PER_DAY} * {US_PER_DAY}"
    )
    probe = f"SELECT 1 FROM candles WHERE {' AND '.join(where)} LIMIT 1"
    return sql, probe, params
