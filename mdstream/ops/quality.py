"""The live page's data-quality panel: gaps by kind, emit latency, quarantine by reason, and a stream's feed status."""

from __future__ import annotations

from datetime import datetime, timedelta

import aiohttp
import duckdb
import orjson
from prometheus_client.parser import text_string_to_metric_families

from ..contract import columns as c
from ..contract import timeframes
from .readonly import frame

LATENCY_LOOKBACK = timedelta(hours=1)
METRICS_TIMEOUT_S = 1.5
METRIC_PREFIX = "mdstream_"
# The samples worth reading first; any other mdstream_* sample follows in name order.
FIRST_METRICS = ("ticks_total", "batches_total", "quarantined_total", "gaps_total", "reconnects_total",
                 "late_trades_total", "last_tick_age_seconds", "queue_depth", "emit_latency_seconds_count")


def _by_timeframe(rows: list[dict]) -> list[dict]:
    """Rows sorted by the contract's timeframe order (unknown timeframes last)."""
    order = {tf: i for i, tf in enumerate(timeframes.SUPPORTED_TIMEFRAMES)}
    return sorted(rows, key=lambda row: order.get(row[c.TIMEFRAME], len(order)))


def gaps_by_kind(con: duckdb.DuckDBPyConnection, exchange: str, symbol: str) -> list[dict]:
    """Per timeframe of one instrument, from the data_quality view: candles, quiet and feed gaps, revised candles,
    late trades (sums over its UTC days)."""
    sql = """SELECT timeframe, sum(candles)::BIGINT AS candles, sum(gaps_quiet)::BIGINT AS gaps_quiet,
                    sum(gaps_feed)::BIGINT AS gaps_feed, sum(revised_candles)::BIGINT AS revised_candles,
                    sum(late_trades)::BIGINT AS late_trades
             FROM data_quality WHERE exchange = ? AND symbol = ? GROUP BY timeframe"""
    return _by_timeframe(frame(con, sql, [exchange, symbol]).to_dicts())


def latency(con: duckdb.DuckDBPyConnection, exchange: str, symbol: str, now: datetime) -> list[dict]:
    """Per timeframe: p50, p99 and max latency_ms of first emissions (revision 0) in the hour before `now`."""
    sql = f"""SELECT {c.TIMEFRAME}, count(*)::BIGINT AS candles, quantile_cont({c.LATENCY_MS}, 0.5) AS p50_ms,
                     quantile_cont({c.LATENCY_MS}, 0.99) AS p99_ms, max({c.LATENCY_MS}) AS max_ms
              FROM candles WHERE {c.EXCHANGE} = ? AND {c.SYMBOL} = ? AND {c.REVISION} = 0 AND {c.TIMESTAMP_OUT} >= ?
              GROUP BY {c.TIMEFRAME}"""
    return _by_timeframe(frame(con, sql, [exchange, symbol, now - LATENCY_LOOKBACK]).to_dicts())


def quarantine(con: duckdb.DuckDBPyConnection, top: int = 20) -> list[dict]:
    """Rejected input rows by reason and field (all sources), largest first, from the quarantine_summary view."""
    sql = f"""SELECT reason, field, sum("rows")::BIGINT AS "rows" FROM quarantine_summary
              GROUP BY reason, field ORDER BY "rows" DESC, reason LIMIT {int(top)}"""
    return frame(con, sql).to_dicts()


def metric_values(text: str) -> list[dict]:
    """mdstream_* samples of a Prometheus text page, summed over labels (histogram buckets and _created left out)."""
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.startswith(METRIC_PREFIX) or sample.name.endswith(("_bucket", "_created")):
                continue
            name = sample.name.removeprefix(METRIC_PREFIX)
            totals[name] = totals.get(name, 0.0) + sample.value
    rank = {name: i for i, name in enumerate(FIRST_METRICS)}
    names = sorted(totals, key=lambda name: (rank.get(name, len(rank)), name))
    return [{"name": name, "value": totals[name]} for name in names]


async def feed_status(session: aiohttp.ClientSession, base_url: str) -> dict:
    """A stream's /healthz status and /metrics totals; an unreachable server is a status, never an exception."""
    base = base_url.rstrip("/")
    timeout = aiohttp.ClientTimeout(total=METRICS_TIMEOUT_S)
    status: dict = {"url": base, "reachable": False, "status": "unreachable", "values": [], "error": None}
    try:
        async with session.get(f"{base}/healthz", timeout=timeout) as response:
            health = orjson.loads(await response.read())
        async with session.get(f"{base}/metrics", timeout=timeout) as response:
            response.raise_for_status()
            text = await response.text()
    except (TimeoutError, aiohttp.ClientError, orjson.JSONDecodeError, ValueError) as exc:
        status["error"] = f"{type(exc).__name__}: {exc}".rstrip(": ")
        return status
    values = metric_values(text)
    if health.get("last_batch_age_s") is not None:
        values.insert(0, {"name": "last_batch_age_s", "value": health["last_batch_age_s"]})
    return {**status, "reachable": True, "status": str(health.get("status", "unknown")), "values": values}
