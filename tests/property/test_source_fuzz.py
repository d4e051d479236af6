"""Damaged feeds: valid trades mixed with every kind of damaged message, split into chunks anyhow, go through the
Binance source's decode, dedupe and plausibility checks. On every run: received = ticks + quarantine rows +
duplicates + ignored for every chunk, and every valid trade comes out exactly once."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import datetime, timedelta, timezone

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from mdstream.contract import columns as c
from mdstream.contract.clock import ManualClock
from mdstream.sources.binance import BinanceSource
from support.damage import IGNORED, KINDS, QUARANTINE, TRADE, as_text, dumps, trade_message

NOW = datetime(2024, 8, 9, 0, 0, tzinfo=timezone.utc)
NOW_MS = int(NOW.timestamp() * 1000)
SYMBOLS = ("BTCUSDT", "ETHUSDT")
BASE = {"BTCUSDT": 60_000.0, "ETHUSDT": 3_000.0}
VALID, REPEAT = -1, -2


class Feed:
    """Builds the message sequence and what must come out of it."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.next_id = {s: 1_000 * (i + 1) for i, s in enumerate(SYMBOLS)}
        self.frames: list[str] = []
        self.valid: list[str] = []  # valid messages sent, for repeats
        self.expected_trades: Counter[tuple[str, str]] = Counter()
        self.expected = Counter()  # quarantine / ignored / duplicates

    def base(self, symbol: str) -> dict:
        """A fresh valid trade of `symbol`, near its usual price."""
        trade_id = self.next_id[symbol]
        self.next_id[symbol] += 1
        price = BASE[symbol] * (1 + self.rng.uniform(-0.01, 0.01))
        qty = f"{self.rng.uniform(0.0001, 2):.5f}"
        return trade_message(symbol, trade_id, price, qty, NOW_MS + len(self.frames), buyer_maker=self.rng.random() < .5)

    def add(self, op: int, symbol: str) -> None:
        """Append a valid trade (VALID), a repeat of an earlier valid one (REPEAT) or damage kind `op`."""
        if op == REPEAT and self.valid:
            self.frames.append(self.rng.choice(self.valid))
            self.expected["duplicates"] += 1
            return
        message = self.base(symbol)
        if op < 0:
            text = dumps(message)
            self.valid.append(text)
            self.frames.append(text)
            self.expected_trades[(symbol, str(message["data"]["t"]))] += 1
            return
        kind = KINDS[op]
        text = as_text(kind.make(message, self.rng))
        self.frames.append(text)
        if kind.expect == TRADE:
            data = json.loads(text.strip())["data"]
            self.expected_trades[(data["s"].upper(), str(int(data["t"])))] += 1
        else:
            self.expected[kind.expect] += 1


def run(feed: Feed, cuts: list[int]):
    """Every chunk the source makes of the frames cut at `cuts`, after a warm-up of valid trades per symbol."""
    source = BinanceSource(list(SYMBOLS), url="ws://127.0.0.1:9")
    clock = ManualClock(NOW + timedelta(seconds=1))
    warm = Feed(seed=0)
    warm.next_id = {s: 1 for s in SYMBOLS}  # ids below the fuzz's own
    for symbol in SYMBOLS:
        for _ in range(10):
            warm.add(VALID, symbol)
    chunks = [source.feed._chunk(warm.frames, [0] * len(warm.frames), clock)]
    bounds = [0, *sorted(set(cuts)), len(feed.frames)]
    for start, end in zip(bounds, bounds[1:]):
        if end > start:
            part = feed.frames[start:end]
            chunks.append(source.feed._chunk(part, [0] * len(part), clock))
    return chunks[0], chunks[1:]


def check(feed: Feed, cuts: list[int]) -> None:
    """The accounting equation per chunk, and every valid trade out exactly once."""
    warm, chunks = run(feed, cuts)
    assert warm.rows == 20 and warm.quarantine.height == 0
    for chunk in chunks:
        assert chunk.received == chunk.rows + chunk.quarantine.height + chunk.duplicates + sum(chunk.ignored.values())
    assert sum(ch.received for ch in chunks) == len(feed.frames)
    ticks = pl.concat([ch.ticks for ch in chunks if ch.ticks is not None])
    got = Counter(zip(ticks.get_column(c.SYMBOL).to_list(), ticks.get_column(c.ID).to_list()))
    assert got == feed.expected_trades  # no valid trade lost, none twice, nothing else became a trade
    assert sum(ch.quarantine.height for ch in chunks) == feed.expected[QUARANTINE]
    assert sum(sum(ch.ignored.values()) for ch in chunks) == feed.expected[IGNORED]
    assert sum(ch.duplicates for ch in chunks) == feed.expected["duplicates"]
    reasons = pl.concat([ch.quarantine for ch in chunks]).get_column(c.Q_REASON)
    assert reasons.null_count() == 0 and (reasons.str.len_chars() > 0).all()


def test_every_kind_of_damage_in_one_feed_is_accounted_for():
    assert len(KINDS) >= 60
    feed = Feed(seed=1)
    for op in [VALID, *range(len(KINDS)), REPEAT, VALID, REPEAT]:
        feed.add(op, "BTCUSDT")
    check(feed, cuts=[7, 8, 40, 41, 42])


ops = st.one_of(st.just(VALID), st.just(REPEAT), st.integers(0, len(KINDS) - 1))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(ops, st.sampled_from(SYMBOLS)), min_size=1, max_size=80),
       st.lists(st.integers(0, 80), max_size=6), st.integers(0, 2**16))
def test_damaged_feeds_in_any_chunking_lose_no_valid_trade(steps, cuts, seed):
    feed = Feed(seed)
    for op, symbol in steps:
        feed.add(op, symbol)
    check(feed, [cut for cut in cuts if cut <= len(feed.frames)])
