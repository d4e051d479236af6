"""Replay of real recordings: counts, event-time order, the speed-0 clock and paced replay."""

from __future__ import annotations

import asyncio
import gzip
from datetime import timedelta

import polars as pl

from mdstream.contract import columns as c
from mdstream.jobs.batcher import source_batches
from mdstream.sources.replay import ReplaySource

TARDIS_CSV = "tardis/binance-futures_trades_2020-02-22_BTCUSDT.first9999rows.csv"
WS_FILES = ["binance_ws/spot_btcusdt_20240808.gz", "binance_ws/spot_btcusdt_20240809.gz",
            "binance_ws/spot_ethusdt_20240808.gz", "binance_ws/spot_ethusdt_20240809.gz"]


def trade_lines(path) -> int:
    """Number of trade messages in a recording, counted independently of the decoder."""
    with gzip.open(path, "rt") as handle:
        return sum('"e":"trade"' in line for line in handle)


async def drain(source: ReplaySource):
    """Every batch of a replay, with the replay clock observed at each batch."""
    out = []
    async for batch in source_batches(source, source.clock):
        out.append((batch, source.clock.now()))
    return out


def test_replay_of_recorded_websocket_files_merges_all_trades_in_event_time_order(real_data):
    paths = [real_data / name for name in WS_FILES]
    source = ReplaySource(paths, speed=0)
    batches = asyncio.run(drain(source))
    ticks = pl.concat([b.ticks for b, _ in batches])
    assert ticks.height == sum(trade_lines(p) for p in paths)
    assert ticks.get_column(c.TIMESTAMP).is_sorted()
    assert set(ticks.get_column(c.SYMBOL).unique()) == {"BTCUSDT", "ETHUSDT"}
    assert ticks.get_column(c.ID).n_unique() == ticks.height
    # receive time comes from the recording (ns -> us); that machine ran about 1.3 s behind the exchange
    lag = (ticks.get_column(c.TIMESTAMP) - ticks.get_column(c.LOCAL_TIMESTAMP)).dt.total_milliseconds().median()
    assert 1000 < lag < 1600
    # ids are contiguous across the two days of each symbol: no id-jump gap, no quarantine
    assert not [g for b, _ in batches for g in b.gaps]
    assert all(b.quarantine.height == 0 for b, _ in batches)


def test_speed_zero_clock_is_the_latest_event_time_and_batches_close_by_it(real_data):
    source = ReplaySource([real_data / TARDIS_CSV], speed=0, step=60.0, flush_interval=60.0)
    first = source.clock.now()
    batches = asyncio.run(drain(source))
    ticks = pl.concat([b.ticks for b, _ in batches])
    assert ticks.height == 9999
    assert ticks.get_column(c.ID).cast(pl.Int64).to_list() == list(range(42377944, 42377944 + 9999))
    assert first == ticks.get_column(c.TIMESTAMP).min()
    assert source.clock.now() == ticks.get_column(c.TIMESTAMP).max()
    for batch, clock_at in batches:
        assert batch.received_at <= clock_at
        if batch.ticks.height:
            assert batch.ticks.get_column(c.TIMESTAMP).max() <= batch.received_at
    # one batch per step of event time: each closes in a later step than the one before
    slots = [(b.received_at - first) // timedelta(seconds=60) for b, _ in batches[:-1]]
    assert slots == sorted(set(slots)) and slots[0] >= 1
    # deterministic: a second replay cuts the same batches
    again = asyncio.run(drain(ReplaySource([real_data / TARDIS_CSV], speed=0, step=60.0, flush_interval=60.0)))
    assert [b.ticks.height for b, _ in again] == [b.ticks.height for b, _ in batches]


def test_paced_replay_follows_event_time(real_data, tmp_path):
    # the first 3 s of trades at 10x: about 0.3 s of wall time
    frame = pl.read_csv(real_data / TARDIS_CSV)
    start = frame.get_column("timestamp").min()
    short = tmp_path / "short.csv"
    frame.filter(pl.col("timestamp") < start + 3_000_000).write_csv(short)
    source = ReplaySource([short], speed=10, step=0.1)

    async def timed():
        loop = asyncio.get_running_loop()
        began = loop.time()
        batches = await drain(source)
        return batches, loop.time() - began

    batches, wall = asyncio.run(timed())
    assert sum(b.ticks.height for b, _ in batches) == frame.filter(pl.col("timestamp") < start + 3_000_000).height
    assert 0.15 < wall < 1.5


async def chunks_of(source: ReplaySource) -> list:
    """Every chunk the replay makes (before batching), with its accounting."""
    return [chunk async for chunk in source.chunks()]


def test_replay_accounts_for_every_line_of_the_recordings(real_data):
    paths = [real_data / name for name in WS_FILES]
    lines = 0
    for path in paths:
        with gzip.open(path, "rt") as handle:
            lines += sum(1 for line in handle if line.strip())
    source = ReplaySource(paths, speed=0)
    chunks = asyncio.run(chunks_of(source))
    for chunk in chunks:
        assert chunk.received == chunk.rows + (chunk.quarantine.height if chunk.quarantine is not None else 0) \
            + chunk.duplicates + sum(chunk.ignored.values())
    assert sum(ch.received for ch in chunks) == lines
    status = source.status.snapshot()
    assert status["received"] == lines and status["accepted"] == sum(trade_lines(p) for p in paths)
    assert set(status["ignored"]) == {"bookTicker", "depthUpdate", "snapshot"} and status["quarantined"] == {}


def test_ids_neither_consecutive_nor_ordered_keep_every_trade_in_replay(tmp_path):
    """A Hyperliquid-like file: large ids in no order; replay keeps every trade, as backfill does."""
    n = 64
    ids = pl.int_range(0, n, eager=True).shuffle(seed=5) * 1_000_003 + 10**11
    start = 1_723_161_600_000_000
    frame = pl.DataFrame({
        "exchange": ["hyperliquid"] * n, "symbol": ["BTC"] * n, "timestamp": [start + 250_000 * i for i in range(n)],
        "local_timestamp": [start + 250_000 * i + 900 for i in range(n)], "id": ids.cast(pl.String),
        "side": ["buy", "sell"] * (n // 2), "price": [59_000.0 + i for i in range(n)], "amount": [0.01] * n,
    })
    path = tmp_path / "hyperliquid_trades_2024-08-09_BTC.csv"
    frame.write_csv(path)
    chunks = asyncio.run(chunks_of(ReplaySource([path], speed=0)))
    ticks = pl.concat([ch.ticks for ch in chunks if ch.ticks is not None])
    assert ticks.height == n and sorted(ticks[c.ID].to_list()) == sorted(ids.cast(pl.String).to_list())
    assert not [g for ch in chunks for g in ch.gaps]


def test_a_recorded_coin_m_file_replays_as_binance_delivery(tmp_path):
    import orjson

    from support.damage import trade_message

    path = tmp_path / "btcusd_perp_20240809.gz"
    ms = 1_723_161_600_000
    with gzip.open(path, "wt") as handle:
        for i in range(50):
            message = trade_message("BTCUSD_PERP", 900_000 + i, 59_000.0 + i, str(1 + i % 7), ms + 100 * i, futures=True)
            handle.write(f"{(ms + 100 * i) * 1000 + 700} {orjson.dumps(message).decode()}\n")  # us stamps
    chunks = asyncio.run(chunks_of(ReplaySource([path], speed=0)))
    ticks = pl.concat([ch.ticks for ch in chunks if ch.ticks is not None])
    assert ticks.height == 50 and ticks[c.EXCHANGE].unique().to_list() == ["binance-delivery"]
    assert ticks[c.AMOUNT].to_list()[:3] == [1.0, 2.0, 3.0]  # contracts, as the venue reports them
    lag = (ticks[c.LOCAL_TIMESTAMP] - ticks[c.TIMESTAMP]).dt.total_microseconds().unique().to_list()
    assert lag == [700]  # 16-digit receive stamps read as microseconds


def test_files_merge_in_event_time_with_ties_in_file_then_row_order(tmp_path):
    """Two files, one of them out of order: the replay hands trades over by exchange time, equal times in the
    order of the files given and of their rows (a stable merge), and an unsorted file is sorted too."""
    start = 1_723_161_600_000_000

    def write(name: str, rows: list[tuple[int, str]]) -> object:
        """A Tardis trades file of (µs after start, id) rows of one symbol."""
        n = len(rows)
        frame = pl.DataFrame({
            "exchange": ["binance-futures"] * n, "symbol": ["BTCUSDT"] * n,
            "timestamp": [start + us for us, _ in rows], "local_timestamp": [start + us + 900 for us, _ in rows],
            "id": [i for _, i in rows], "side": ["buy"] * n, "price": [59_000.0] * n, "amount": [0.01] * n,
        })
        path = tmp_path / name
        frame.write_csv(path)
        return path

    first = write("a.csv", [(1_000, "11"), (2_000, "12"), (2_000, "13")])
    second = write("b.csv", [(2_000, "21"), (1_000, "22"), (2_000, "23"), (500, "24")])
    ticks = pl.concat([b.ticks for b, _ in asyncio.run(drain(ReplaySource([first, second], speed=0)))])
    assert ticks.get_column(c.ID).to_list() == ["24", "11", "22", "12", "13", "21", "23"]
    alone = pl.concat([b.ticks for b, _ in asyncio.run(drain(ReplaySource([second], speed=0)))])
    assert alone.get_column(c.ID).to_list() == ["24", "22", "21", "23"]
