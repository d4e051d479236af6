"""The stream job's defaults (and the live chart's poll), in one place: the request objects, the CLI, the batcher
and the sources refer here."""

from __future__ import annotations

FLUSH_INTERVAL_S = 0.25  # seconds of one micro-batch
MAX_ROWS = 50_000  # row cap of one micro-batch
LATENESS_S = 1.0  # seconds a window waits for out-of-order trades after it ends
HORIZON_S = 120.0  # seconds after emission a window still takes revisions; later trades are quarantined
MAX_SKEW_S = 5.0  # seconds a trade may be stamped ahead of the clock
MAX_QUIET_S = 60.0  # seconds past the last trade the wall clock may close windows on a quiet live feed
SILENCE_TIMEOUT_S = 10.0  # seconds without any message before a live feed counts as down and reconnects
MAX_FEED_DOWN_S = 60.0  # seconds a live feed may stay down before /healthz answers 503
BACKOFF_INITIAL_S = 0.25  # first reconnect delay of a live source, doubled per failed attempt
BACKOFF_MAX_S = 30.0  # cap of the reconnect delay
FOLD_AHEAD_S = 0.25  # a window is folded up to this long (at most half the lateness) before it is due
SERVE_POLL_S = 0.25  # seconds between two looks of `mdstream serve` for new candles
