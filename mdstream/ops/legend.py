"""Features a chart's crosshair legend shows unless told otherwise (no imports: the CLI reads it at start-up)."""

LEGEND_FEATURES = ("rsi_5", "macd_hist", "bb_pctb_20", "volatility_10", "volume_ratio", "trade_intensity",
                   "vwap_deviation", "cs_spread")
