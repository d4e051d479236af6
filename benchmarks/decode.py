"""Decode throughput of raw Binance combined-stream trade messages, against orjson.loads alone as a floor; also
the whole source path of a chunk (decode, dedupe, id jumps, plausibility band) and a recording's mixed messages.

    python benchmarks/decode.py [RECORDING.gz ...]   (default: the spot BTCUSDT recording of the real-data folder)
"""

from __future__ import annotations

import gzip
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import orjson

from mdstream.inputs.decode import TRADE_ID, decode_binance, raw_frame
from mdstream.sources.base import FeedTracker

CHUNK = 500  # messages per decode call, the live source's largest chunk
TARGET = 200_000  # msgs/s on one core


def recorded_messages(paths: list[Path], trades_only: bool = True) -> list[str]:
    """Raw messages (combined-stream JSON) of the recordings: the trade messages, or every message."""
    out = []
    for path in paths:
        with gzip.open(path, "rt") as handle:
            out.extend(line.split(" ", 1)[1].rstrip("\n") for line in handle
                       if not trades_only or '"e":"trade"' in line)
    return out


def best_rate(fn, messages: list[str], repeats: int = 5) -> float:
    """Best messages per second of `fn(chunk)` over all messages in CHUNK-sized calls."""
    chunks = [messages[i:i + CHUNK] for i in range(0, len(messages), CHUNK)]
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for chunk in chunks:
            fn(chunk)
        best = min(best, time.perf_counter() - start)
    return len(messages) / best


def main() -> None:
    """Print decode msgs/s, the orjson floor and their ratio."""
    default = Path(os.environ.get("MDSTREAM_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "real"))
    paths = [Path(p) for p in sys.argv[1:]] or [default / "binance_ws" / "spot_btcusdt_20240808.gz"]
    messages = recorded_messages(paths) * 5
    mixed = recorded_messages(paths, trades_only=False)
    now = datetime.now(timezone.utc)
    stamp = int(now.timestamp() * 1e6)
    symbols = ("BTCUSDT", "ETHUSDT")

    def decode(chunk):
        return decode_binance(raw_frame(chunk, stamp), exchange="binance", source="bench", now=now, symbols=symbols)

    def floor(chunk):
        return [orjson.loads(m) for m in chunk]

    def source_path(tracker: FeedTracker):
        def run(chunk):
            tracker.accept(decode(chunk).ticks, TRADE_ID, now=now)
        return run

    ticks = decode(messages[:CHUNK])[0]
    assert ticks.height == min(CHUNK, len(messages))
    ours, base = best_rate(decode, messages), best_rate(floor, messages)
    # repeats of the recording are duplicates to the tracker after the first pass: a fresh tracker per pass
    checked = max(best_rate(source_path(FeedTracker("binance", symbols, check_id_jumps=True)), messages[:len(messages) // 5],
                            repeats=1) for _ in range(5))
    everything = best_rate(decode, mixed)
    print(f"messages: {len(messages)} in chunks of {CHUNK}")
    print(f"decode to ticks: {ours:,.0f} msgs/s  (target {TARGET:,}: {'met' if ours >= TARGET else 'MISSED'})")
    print(f"orjson.loads alone: {base:,.0f} msgs/s  ratio decode/floor = {ours / base:.2f}")
    print(f"decode + dedupe, id jumps, price band (the source's chunk path): {checked:,.0f} msgs/s")
    print(f"decode of the recording's every message ({len(mixed)}: trades, book tickers, depth): {everything:,.0f} msgs/s")


if __name__ == "__main__":
    main()
