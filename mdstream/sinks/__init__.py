"""Sinks: where ticks, candles and quarantined rows land."""
