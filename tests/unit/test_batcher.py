"""Micro-batcher: time- and size-based flushing with a manual clock, empty batches on a quiet market."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from mdstream.contract import columns as c
from mdstream.contract import schema
from mdstream.contract.clock import ManualClock
from mdstream.contract.errors import ConfigError
from mdstream.contract.feed import FeedGap, SourceChunk
from mdstream.jobs.batcher import micro_batches

START = datetime(2024, 1, 1, tzinfo=timezone.utc)


def ticks(n: int, first_id: int = 0) -> pl.DataFrame:
    """`n` tick rows with ids first_id.."""
    return schema.conform(pl.DataFrame({
        c.EXCHANGE: ["x"] * n, c.SYMBOL: ["S"] * n, c.TIMESTAMP: [START] * n, c.LOCAL_TIMESTAMP: [START] * n,
        c.ID: [str(first_id + i) for i in range(n)], c.SIDE: ["buy"] * n, c.PRICE: [1.0] * n, c.AMOUNT: [1.0] * n,
    }), schema.TICK_SCHEMA)


async def scripted(clock: ManualClock, script):
    """A source that, per step, moves the clock by `seconds` and then hands over `chunk`."""
    for seconds, chunk in script:
        clock.advance(seconds)
        yield chunk
        await asyncio.sleep(0)


def collect(script, **options):
    """All batches of a scripted source, with the manual clock starting at START."""
    async def run():
        clock = ManualClock(START)
        return [b async for b in micro_batches(scripted(clock, script), clock=clock, **options)]

    return asyncio.run(run())


def test_time_based_flush_groups_chunks_per_interval():
    script = [(0.1, SourceChunk(ticks=ticks(3))), (0.1, SourceChunk(ticks=ticks(2, 3))),
              (0.1, SourceChunk(ticks=ticks(4, 5))), (0.3, SourceChunk(ticks=ticks(1, 9)))]
    batches = collect(script, flush_interval=0.25)
    assert [b.ticks.height for b in batches] == [9, 1]
    assert batches[0].received_at == START + timedelta(seconds=0.3)
    assert batches[0].ticks.get_column(c.ID).to_list() == [str(i) for i in range(9)]
    assert batches[0].ticks.schema == pl.Schema(schema.TICK_SCHEMA)


def test_row_cap_closes_a_batch_before_the_interval():
    script = [(0.01, SourceChunk(ticks=ticks(40, 40 * i))) for i in range(5)]
    batches = collect(script, flush_interval=10.0, max_rows=100)
    assert [b.ticks.height for b in batches] == [120, 80]
    assert all(b.received_at < START + timedelta(seconds=1) for b in batches)


def test_quiet_intervals_yield_empty_batches_and_gaps_pass_through():
    gap = FeedGap("x", ("S",), START, None, "disconnect")
    quiet = SourceChunk()  # a source's heartbeat: nothing traded
    script = [(0.3, quiet), (0.3, quiet), (0.3, SourceChunk(gaps=[gap])), (2.0, quiet), (0.01, SourceChunk(ticks=ticks(1)))]
    batches = collect(script, flush_interval=0.25)
    heights = [b.ticks.height for b in batches]
    assert heights[:3] == [0, 0, 0] and heights[-1] == 1
    assert batches[0].quarantine.schema == pl.Schema(schema.QUARANTINE_SCHEMA)
    assert [g for b in batches for g in b.gaps] == [gap]
    # a clock jump over several intervals closes one batch, not one per missed interval
    assert len(batches) == 5


def test_invalid_options_are_config_errors():
    clock = ManualClock(START)
    with pytest.raises(ConfigError):
        micro_batches(scripted(clock, []), clock=clock, flush_interval=0)
