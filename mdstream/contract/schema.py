"""Column types and descriptions of ticks, candles and quarantine rows (Polars and Arrow)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import polars as pl

if TYPE_CHECKING:  # pyarrow costs ~0.1 s to import; commands that never touch Arrow do not pay it
    import pyarrow as pa

from . import columns as c
from .features import FEATURES

TS = pl.Datetime("us", "UTC")

TICK_SCHEMA: dict[str, pl.DataType] = {
    c.EXCHANGE: pl.String(),
    c.SYMBOL: pl.String(),
    c.TIMESTAMP: TS,
    c.LOCAL_TIMESTAMP: TS,
    c.ID: pl.String(),
    c.SIDE: pl.String(),
    c.PRICE: pl.Float64(),
    c.AMOUNT: pl.Float64(),
}

CANDLE_BASE_SCHEMA: dict[str, pl.DataType] = {
    c.EXCHANGE: pl.String(),
    c.SYMBOL: pl.String(),
    c.TIMEFRAME: pl.String(),
    c.TIMESTAMP_IN: TS,
    c.TIMESTAMP_OUT: TS,
    c.LATENCY_MS: pl.Float64(),
    c.OPEN: pl.Float64(),
    c.HIGH: pl.Float64(),
    c.LOW: pl.Float64(),
    c.CLOSE: pl.Float64(),
    c.VOLUME: pl.Float64(),
    c.BASE_VOLUME: pl.Float64(),
    c.QUOTE_VOLUME: pl.Float64(),
    c.BUY_VOLUME: pl.Float64(),
    c.SELL_VOLUME: pl.Float64(),
    c.TRADES: pl.Int64(),
    c.VWAP: pl.Float64(),
    c.FIRST_TRADE_AT: TS,
    c.LAST_TRADE_AT: TS,
    c.GAP: pl.String(),
    c.REVISION: pl.Int64(),
    c.LATE_TRADES: pl.Int64(),
}

CANDLE_SCHEMA: dict[str, pl.DataType] = {**CANDLE_BASE_SCHEMA, **{name: pl.Float64() for name in c.FEATURE_COLUMNS}}

QUARANTINE_SCHEMA = pl.Schema({
    c.Q_SOURCE: pl.String(),
    c.Q_LINE: pl.Int64(),
    c.Q_FIELD: pl.String(),
    c.Q_REASON: pl.String(),
    c.Q_RAW: pl.String(),
    c.Q_QUARANTINED_AT: TS,
})

DESCRIPTIONS: dict[str, str] = {
    c.EXCHANGE: "Exchange id as Tardis names it, e.g. binance-futures.",
    c.SYMBOL: "The exchange's own symbol, e.g. BTCUSDT.",
    c.TIMESTAMP: "Exchange event time of the trade, UTC, microseconds.",
    c.LOCAL_TIMESTAMP: "Time the trade was received, UTC, microseconds.",
    c.ID: "Exchange trade id (string, may be null).",
    c.SIDE: "Aggressor side: buy, sell or unknown.",
    c.PRICE: "Trade price in quote currency.",
    c.AMOUNT: "Trade amount as the venue reports it: base units (spot, most linear), contracts (inverse, quanto, "
              "some linear), USD for Deribit inverse.",
    c.TIMEFRAME: "Window length: 15s, 1m, 5m, 15m, 1h, 4h or 1d.",
    c.TIMESTAMP_IN: "Window start, UTC; the window is [timestamp_in, timestamp_in + timeframe).",
    c.TIMESTAMP_OUT: "Wall-clock time the row was finalised by the processor, UTC.",
    c.LATENCY_MS: "timestamp_out - window end, in milliseconds.",
    c.OPEN: "Price of the first trade in the window (previous close when empty).",
    c.HIGH: "Highest trade price in the window (previous close when empty).",
    c.LOW: "Lowest trade price in the window (previous close when empty).",
    c.CLOSE: "Price of the last trade in the window (previous close when empty).",
    c.VOLUME: "Sum of trade amounts as the venue reports them (base units for spot, contracts for inverse and "
              "quanto): what the venue's own klines call volume.",
    c.BASE_VOLUME: "Base-asset volume: sum amount * contract_size (spot, linear), sum amount * contract_size / "
                   "price (inverse); quanto: sum amount * multiplier (settlement currency per unit of price).",
    c.QUOTE_VOLUME: "Notional: sum price * amount * contract_size (spot, linear; quanto in the settlement "
                    "currency), sum amount * contract_size (inverse, in the quote currency).",
    c.BUY_VOLUME: "Sum of amounts of buyer-initiated trades (taker buy), in volume units.",
    c.SELL_VOLUME: "Sum of amounts of seller-initiated trades (taker sell), in volume units.",
    c.TRADES: "Number of trades in the window.",
    c.VWAP: "quote_volume / base_volume: a price for every kind of instrument; null for an empty window.",
    c.FIRST_TRADE_AT: "Event time of the first trade in the window.",
    c.LAST_TRADE_AT: "Event time of the last trade in the window.",
    c.GAP: "null: complete; quiet: no trades while the feed was up; feed: source down or data missing.",
    c.REVISION: "0 for the first emission; +1 for every correction by late trades. Readers take the highest.",
    c.LATE_TRADES: "Trades that arrived after the window was first emitted.",
    **{feature.name: feature.description for feature in FEATURES},
    c.Q_SOURCE: "File or stream the rejected row came from.",
    c.Q_LINE: "1-based line number in that file (null for streams).",
    c.Q_FIELD: "The offending field.",
    c.Q_REASON: "Why the row was rejected.",
    c.Q_RAW: "The raw row as received.",
    c.Q_QUARANTINED_AT: "When the row was quarantined.",
}


def arrow_schema(schema: dict[str, pl.DataType]) -> pa.Schema:
    """Arrow schema of a Polars schema dict (timestamps stay timestamp[us, tz=UTC])."""
    return pl.DataFrame(schema=schema).to_arrow().schema


def empty(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """An empty frame with exactly `schema`."""
    return pl.DataFrame(schema=schema)


def empty_ticks() -> pl.DataFrame:
    """An empty frame with the tick schema."""
    return empty(TICK_SCHEMA)


def empty_quarantine() -> pl.DataFrame:
    """An empty frame with the quarantine schema."""
    return empty(QUARANTINE_SCHEMA)


def conform(df: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """`df` with exactly the columns of `schema`, in order and cast; missing columns become null."""
    if df.width == 0:  # a literal would broadcast to one row of nulls
        return empty(schema)
    return df.select(
        [(pl.col(name) if name in df.columns else pl.lit(None)).cast(dtype).alias(name) for name, dtype in schema.items()]
    )


def newest(column: pl.Series) -> datetime | None:
    """Latest value of a timestamp column (None when it is empty or all null)."""
    return cast("datetime | None", column.max())


def oldest(column: pl.Series) -> datetime | None:
    """Earliest value of a timestamp column (None when it is empty or all null)."""
    return cast("datetime | None", column.min())


class ArrowView:
    """A Polars frame offered through the Arrow PyCapsule stream interface alone: DuckDB scans it (a new stream
    for every scan) without pyarrow, which `DataFrame.to_arrow` would import."""

    def __init__(self, frame: pl.DataFrame):
        self.frame = frame

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """A fresh Arrow C stream of the frame (PyCapsule)."""
        return self.frame.__arrow_c_stream__(requested_schema)


def from_stream(source: Any) -> pl.DataFrame:
    """Any Arrow C stream (a DuckDB relation, an ArrowView) as a Polars frame, read without pyarrow."""
    return pl.DataFrame(source)


def from_arrow(table: pa.Table) -> pl.DataFrame:
    """An Arrow table as a Polars frame (pl.from_arrow of a table is always a frame)."""
    return cast(pl.DataFrame, pl.from_arrow(table))
