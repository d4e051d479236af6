"""Every column name of the data contract, in one place; code never picks columns by position."""

from .features import NAMES

# Ticks: one row per trade.
EXCHANGE = "exchange"
SYMBOL = "symbol"
TIMESTAMP = "timestamp"
LOCAL_TIMESTAMP = "local_timestamp"
ID = "id"
SIDE = "side"
PRICE = "price"
AMOUNT = "amount"

TICK_COLUMNS = (EXCHANGE, SYMBOL, TIMESTAMP, LOCAL_TIMESTAMP, ID, SIDE, PRICE, AMOUNT)

SIDE_BUY = "buy"
SIDE_SELL = "sell"
SIDE_UNKNOWN = "unknown"
SIDES = (SIDE_BUY, SIDE_SELL, SIDE_UNKNOWN)

# Candles: one row per (exchange, symbol, timeframe, window, revision).
TIMEFRAME = "timeframe"
TIMESTAMP_IN = "timestamp_in"
TIMESTAMP_OUT = "timestamp_out"
LATENCY_MS = "latency_ms"
OPEN = "open"
HIGH = "high"
LOW = "low"
CLOSE = "close"
VOLUME = "volume"
BASE_VOLUME = "base_volume"
QUOTE_VOLUME = "quote_volume"
BUY_VOLUME = "buy_volume"
SELL_VOLUME = "sell_volume"
TRADES = "trades"
VWAP = "vwap"
FIRST_TRADE_AT = "first_trade_at"
LAST_TRADE_AT = "last_trade_at"
GAP = "gap"
REVISION = "revision"
LATE_TRADES = "late_trades"

GAP_QUIET = "quiet"
GAP_FEED = "feed"

SERIES_KEY = (EXCHANGE, SYMBOL, TIMEFRAME)
CANDLE_KEY = (EXCHANGE, SYMBOL, TIMEFRAME, TIMESTAMP_IN, REVISION)

CANDLE_BASE_COLUMNS = (
    EXCHANGE, SYMBOL, TIMEFRAME, TIMESTAMP_IN, TIMESTAMP_OUT, LATENCY_MS,
    OPEN, HIGH, LOW, CLOSE, VOLUME, BASE_VOLUME, QUOTE_VOLUME, BUY_VOLUME, SELL_VOLUME, TRADES, VWAP,
    FIRST_TRADE_AT, LAST_TRADE_AT, GAP, REVISION, LATE_TRADES,
)

# Features (names are part of the contract): the registry in contract/features.py, in its order.
FEATURE_COLUMNS = NAMES

CANDLE_COLUMNS = CANDLE_BASE_COLUMNS + FEATURE_COLUMNS

# Quarantine: rows that could not become ticks, kept for inspection.
Q_SOURCE = "source"
Q_LINE = "line"
Q_FIELD = "field"
Q_REASON = "reason"
Q_RAW = "raw"
Q_QUARANTINED_AT = "quarantined_at"
QUARANTINE_COLUMNS = (Q_SOURCE, Q_LINE, Q_FIELD, Q_REASON, Q_RAW, Q_QUARANTINED_AT)
