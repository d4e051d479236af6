"""mdstream: trade ticks to UTC-aligned multi-timeframe candles and features."""

__version__ = "0.1.0"
