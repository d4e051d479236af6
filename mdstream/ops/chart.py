"""Chart data from a DuckDB file: series, latest-revision candles with overlays, and the offline HTML file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from ..contract import columns as c
from ..contract import dates, schema, timeframes
from ..contract.errors import ConfigError, InputError
from . import page
from .legend import LEGEND_FEATURES
from .readonly import frame, reading

BB_WINDOW, BB_STD = 20, 2.0
BB_UPPER, BB_MID, BB_LOWER = "bb_upper", "bb_mid", "bb_lower"
SESSION_VWAP = "vwap_day"  # cumulative quote volume / volume since UTC midnight: the contract's feature
BASE_COLUMNS = (c.TIMESTAMP_IN, c.TIMESTAMP_OUT, c.OPEN, c.HIGH, c.LOW, c.CLOSE, c.VOLUME, c.TRADES, c.VWAP,
                c.GAP, c.REVISION, c.LATE_TRADES, SESSION_VWAP)
# Payload keys of the columnar series the page reads (short: a chart file holds many thousands of rows).
PAYLOAD_KEYS = {"o": c.OPEN, "h": c.HIGH, "l": c.LOW, "c": c.CLOSE, "v": c.VOLUME, "n": c.TRADES, "vwap": c.VWAP,
                "g": c.GAP, "r": c.REVISION, "lt": c.LATE_TRADES, "vw": SESSION_VWAP,
                "bu": BB_UPPER, "bm": BB_MID, "bl": BB_LOWER}


@dataclass(frozen=True)
class Series:
    """One chartable series: (exchange, symbol, timeframe)."""

    exchange: str
    symbol: str
    timeframe: str

    @property
    def seconds(self) -> int:
        """Window length in seconds."""
        return timeframes.duration_us(self.timeframe) // timeframes.US_PER_SECOND

    @property
    def key(self) -> str:
        """'exchange|symbol|timeframe', the id the page uses."""
        return f"{self.exchange}|{self.symbol}|{self.timeframe}"


def features_list(text: str | None) -> tuple[str, ...]:
    """Comma-separated feature names for the legend (default LEGEND_FEATURES); unknown names are a ConfigError."""
    if not text:
        return LEGEND_FEATURES
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [name for name in names if name not in c.FEATURE_COLUMNS]
    if unknown:
        raise ConfigError(f"unknown feature(s) {', '.join(unknown)}; choose from {', '.join(c.FEATURE_COLUMNS)}")
    return names


def list_series(con: duckdb.DuckDBPyConnection, *, exchange: str | None = None, symbols: tuple[str, ...] = (),
                timeframes_wanted: tuple[str, ...] = ()) -> list[Series]:
    """Series stored in `con` (optionally one exchange, some symbols, some timeframes), ordered by exchange, symbol
    and the contract's timeframe order; timeframes the contract does not know are left out."""
    where, params = ["TRUE"], []
    if exchange:
        where.append(f"{c.EXCHANGE} = ?")
        params.append(exchange)
    if symbols:
        where.append(f"{c.SYMBOL} IN ({', '.join('?' for _ in symbols)})")
        params.extend(symbols)
    sql = f"SELECT DISTINCT {c.EXCHANGE}, {c.SYMBOL}, {c.TIMEFRAME} FROM candles WHERE {' AND '.join(where)}"
    order = {tf: i for i, tf in enumerate(timeframes.SUPPORTED_TIMEFRAMES)}
    wanted = set(timeframes_wanted) or set(order)
    rows = [row for row in frame(con, sql, params).iter_rows() if row[2] in order and row[2] in wanted]
    return [Series(*row) for row in sorted(rows, key=lambda r: (r[0], r[1], order[r[2]]))]


def load_candles(con: duckdb.DuckDBPyConnection, series: Series, *, start: datetime | None = None,
                 end: datetime | None = None, limit: int = 2000, features: tuple[str, ...] = LEGEND_FEATURES) -> pl.DataFrame:
    """Latest-revision candles of `series` in [start, end), oldest first (the newest `limit` of them)."""
    where = [f"{c.EXCHANGE} = ?", f"{c.SYMBOL} = ?", f"{c.TIMEFRAME} = ?"]
    params: list = [series.exchange, series.symbol, series.timeframe]
    for clause, value in ((f"{c.TIMESTAMP_IN} >= ?", start), (f"{c.TIMESTAMP_IN} < ?", end)):
        if value is not None:
            where.append(clause)
            params.append(value)
    cols = ", ".join(dict.fromkeys((*BASE_COLUMNS, *features)))
    sql = (f"SELECT {cols} FROM candles_latest WHERE {' AND '.join(where)} "
           f"ORDER BY {c.TIMESTAMP_IN} DESC LIMIT {int(limit)}")
    return frame(con, sql, params).sort(c.TIMESTAMP_IN)


def overlays(candles: pl.LazyFrame) -> pl.LazyFrame:
    """Add Bollinger bands: SMA20 of close +- 2 population std (TA-Lib BBANDS), null during the warm-up."""
    close = pl.col(c.CLOSE)
    mid = close.rolling_mean(BB_WINDOW)
    std = close.rolling_std(BB_WINDOW, ddof=0)
    return candles.sort(c.TIMESTAMP_IN).with_columns(
        mid.alias(BB_MID), (mid + BB_STD * std).alias(BB_UPPER), (mid - BB_STD * std).alias(BB_LOWER),
    )


def payload(candles: pl.DataFrame, series: Series, features: tuple[str, ...] = LEGEND_FEATURES,
            keep_from: datetime | None = None) -> dict:
    """Columnar JSON-ready series: t in epoch seconds (window start), prices, volumes, gaps, revisions, overlays
    and legend features; `u` is the newest timestamp_out in epoch ms. Overlays are computed over every row given,
    then only windows from `keep_from` on are kept (the rows before are the bands' warm-up)."""
    plan = overlays(candles.lazy())
    if keep_from is not None:
        plan = plan.filter(pl.col(c.TIMESTAMP_IN) >= keep_from)
    framed = plan.collect()
    newest = schema.newest(framed.get_column(c.TIMESTAMP_OUT))
    return {
        "key": series.key, "exchange": series.exchange, "symbol": series.symbol, "timeframe": series.timeframe,
        "tf_s": series.seconds,
        "t": framed.get_column(c.TIMESTAMP_IN).dt.epoch("s").to_list(),
        **{key: framed.get_column(name).to_list() for key, name in PAYLOAD_KEYS.items()},
        "f": {name: framed.get_column(name).to_list() for name in features},
        "u": None if newest is None else timeframes.epoch_us(newest) // 1000,
    }


def load_since(con: duckdb.DuckDBPyConnection, series: Series, since: datetime,
               features: tuple[str, ...] = LEGEND_FEATURES) -> dict:
    """payload() of the windows of `series` from `since` on, with the BB_WINDOW - 1 windows before as warm-up."""
    warm = since - timedelta(seconds=series.seconds * (BB_WINDOW - 1))
    candles = load_candles(con, series, start=warm, limit=1_000_000, features=features)
    return payload(candles, series, features, keep_from=since)


def chart_config(series: list[dict], *, initial: str | None, features: tuple[str, ...]) -> dict:
    """The page's configuration for a file: every series embedded, the contract's timeframes, the first view."""
    return {"mode": "file", "timeframes": list(timeframes.SUPPORTED_TIMEFRAMES), "features": list(features),
            "series": [{k: s[k] for k in ("key", "exchange", "symbol", "timeframe", "tf_s")} for s in series],
            "data": {s["key"]: s for s in series}, "initial": initial,
            "initial_timeframe": initial.split("|")[-1] if initial else None}


def write_chart(
    db_path: str | Path, output: str | Path, *, symbols: tuple[str, ...] = (), timeframe: str = "1m",
    timeframes_wanted: tuple[str, ...] = (), exchange: str | None = None, start: datetime | None = None,
    end: datetime | None = None, limit: int = 2000, features: tuple[str, ...] = LEGEND_FEATURES,
) -> tuple[int, int]:
    """Write one offline HTML file with every matching series (switchable in the page); returns (series, candles).
    The page opens on the first symbol at `timeframe`."""
    first_tf = timeframes.normalize(timeframe)
    wanted = tuple(timeframes.normalize(tf) for tf in timeframes_wanted)
    if wanted and first_tf not in wanted:
        wanted = (*wanted, first_tf)
    with reading(db_path, wait_s=10.0) as con:
        found = list_series(con, exchange=exchange, symbols=symbols, timeframes_wanted=wanted)
        loaded = [(s, load_candles(con, s, start=start, end=end, limit=limit, features=features)) for s in found]
    series = [payload(candles, s, features) for s, candles in loaded if candles.height]
    first = next((s for s in series if s["timeframe"] == first_tf), None)
    if first is None:
        what = ", ".join(symbols) if symbols else "any symbol"
        raise InputError(f"no {first_tf} candles for {what} in the requested range", path=str(db_path))
    names = sorted({f"{s['exchange']} {s['symbol']}" for s in series})
    title = f"{names[0]} and {len(names) - 1} more" if len(names) > 1 else names[0]
    html = page.render(chart_config(series, initial=first["key"], features=features), title=title)
    Path(output).write_text(html, encoding="utf-8")
    return len(series), sum(len(s["t"]) for s in series)


def as_utc(value: datetime | None) -> datetime | None:
    """`value` as an aware UTC datetime (naive values are taken to be UTC)."""
    if value is None:
        return None
    return dates.as_utc(value)
