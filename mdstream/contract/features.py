"""The feature registry: one entry per feature column (name, formula and units, the history it needs), in contract
order. The column lists, the schema's descriptions, the SQL views and docs/contract.md all derive from it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Feature:
    """One feature column: `lags` candles of the series come before its first value (its warm-up; a window of n
    reads n - 1 earlier candles), and `state` names the carried quantities a recursive feature resumes from
    instead of re-reading its history (a continuation restores them from the stored tail)."""

    name: str
    description: str  # one line: the formula and the unit
    lags: int
    state: tuple[str, ...] = ()  # carried state columns, named as the kernel stores them without the _st_ prefix


def _window(name: str, what: str, n: int, unit: str) -> Feature:
    """A mean over the n newest candles: n - 1 earlier ones."""
    return Feature(name, f"Mean {what} over {n} candles [{unit}].", n - 1)


def _ema(n: int) -> Feature:
    """TA-Lib EMA of close over n: seeded with the SMA of the first n, then recursive."""
    return Feature(f"ema_{n}", f"EMA of close, alpha 2/{n + 1}, seeded with the SMA of the first {n} [price].", n - 1,
                   (f"ema_{n}",))


FEATURES: tuple[Feature, ...] = (
    _window("sma_5", "close", 5, "price"),
    _window("sma_10", "close", 10, "price"),
    _window("sma_20", "close", 20, "price"),
    _ema(5),
    _ema(10),
    _ema(20),
    Feature("wma_5", "Linearly weighted mean close over 5 candles (weights 1..5, newest 5) [price].", 4),
    Feature("momentum_3", "close / close 3 candles ago - 1 [fraction].", 3),
    Feature("momentum_5", "close / close 5 candles ago - 1 [fraction].", 5),
    Feature("velocity", "(close - previous close) / timeframe seconds [price/s].", 1),
    Feature("acceleration", "(velocity - previous velocity) / timeframe seconds [price/s^2].", 2),
    _window("volume_sma_20", "volume", 20, "volume"),
    Feature("volume_ratio", "volume / volume_sma_20 [ratio].", 19),
    Feature("vwap_deviation", "(close - vwap) / vwap [fraction].", 0),
    Feature("vwap_day", "Cumulative quote_volume / cumulative base_volume since UTC midnight [price].", 0,
            ("day_qv", "day_v")),
    Feature("log_return", "ln(close / previous close) [log return].", 1),
    Feature("volatility_5", "Population std of log_return over 5 candles [log return].", 5),
    Feature("volatility_10", "Population std of log_return over 10 candles [log return].", 10),
    Feature("high_low_ratio", "high / low [ratio].", 0),
    Feature("trade_intensity", "trades / timeframe seconds [trades/s].", 0),
    Feature("avg_trade_size", "volume / trades [volume].", 0),
    Feature("amihud", "|log_return| / quote_volume (Amihud illiquidity) [log return per quote unit].", 1),
    Feature("kyle_lambda", "cov(log_return, buy_volume - sell_volume) / var(buy_volume - sell_volume), 20 candles "
            "[log return per volume].", 20),
    Feature("roll_spread", "Roll (1984): 2 * sqrt(-cov(dclose, previous dclose)) over 20 changes; null if cov > 0 "
            "[price].", 21),
    Feature("cs_spread", "Corwin-Schultz (2012) two-candle high-low spread estimate, negatives set to 0 [fraction].",
            1),
    Feature("rsi_5", "Wilder RSI over 5 candles: 100 gain / (gain + loss) [0..100].", 5, ("rsi_gain", "rsi_loss")),
    Feature("bb_pctb_20", "Bollinger %B: (close - lower) / (upper - lower), 20 candles, 2 population std [fraction].",
            19),
    Feature("macd", "EMA12(close) - EMA26(close), TA-Lib seeding [price].", 33, ("ema_12", "ema_26", "macd_signal")),
    Feature("macd_signal", "EMA9 of macd [price].", 33, ("ema_12", "ema_26", "macd_signal")),
    Feature("macd_hist", "macd - macd_signal [price].", 33, ("ema_12", "ema_26", "macd_signal")),
)

BY_NAME: dict[str, Feature] = {feature.name: feature for feature in FEATURES}
NAMES: tuple[str, ...] = tuple(feature.name for feature in FEATURES)


def sql_list(indent: str = "    ", per_line: int = 7) -> str:
    """The feature column names, comma-separated, `per_line` to a line (SQL select lists)."""
    lines = [", ".join(NAMES[i:i + per_line]) for i in range(0, len(NAMES), per_line)]
    return f",\n{indent}".join(lines)
