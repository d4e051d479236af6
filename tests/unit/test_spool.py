"""The on-disk spool: order, byte cap, crash recovery, backoff that respects retry-after."""

from __future__ import annotations

import pyarrow as pa
import pytest

from mdstream.contract.errors import SinkUnavailable, SpoolFull
from mdstream.sinks.spool import Backoff, Spool, SpooledDelivery


def batch(first: int, rows: int = 100) -> pa.Table:
    """Rows first..first+rows-1 with a payload column."""
    return pa.table({"n": pa.array(range(first, first + rows), pa.int64()), "payload": ["x" * 20] * rows})


class Target:
    """A destination that can be switched off, recording what it received (in order)."""

    def __init__(self):
        self.up, self.received, self.calls, self.retry_after = True, [], 0, None

    def send(self, kind: str, table: pa.Table, meta: dict) -> None:
        """Accept `table` when up; note where it was first tried, as the BigQuery sink does."""
        self.calls += 1
        meta.setdefault("first_try", self.calls)
        if not self.up:
            raise SinkUnavailable("down", retry_after=self.retry_after)
        self.received.append((kind, table.column("n")[0].as_py(), meta["first_try"]))


class Clock:
    """A monotonic clock moved by hand."""

    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_batches_wait_in_order_and_drain_after_recovery(tmp_path):
    target, clock = Target(), Clock()
    delivery = SpooledDelivery(Spool(tmp_path, 10_000_000), target.send, Backoff(base=1, cap=8, monotonic=clock))
    assert delivery.deliver("candles", batch(0))
    target.up = False
    assert not delivery.deliver("candles", batch(100))  # tried once, then spooled with its first-try note
    assert not delivery.deliver("ticks", batch(200))  # not tried: the backoff has not elapsed
    assert target.calls == 2 and len(delivery.spool) == 2
    target.up = True
    assert delivery.drain() == 0  # still inside the backoff window
    clock.t += 1.0
    assert not delivery.deliver("candles", batch(300))  # queued behind the older batches, then all drained
    assert [(k, n) for k, n, _ in target.received] == [("candles", 0), ("candles", 100), ("ticks", 200),
                                                       ("candles", 300)]
    assert target.received[1][2] == 2  # the note written on the failed try travelled with the batch
    assert len(delivery.spool) == 0 and list(tmp_path.iterdir()) == []


def test_a_crash_leaves_the_spool_to_the_next_process(tmp_path):
    target = Target()
    target.up = False
    first = SpooledDelivery(Spool(tmp_path, 10_000_000), target.send)
    for start in (0, 100, 200):
        first.deliver("candles", batch(start))
    (tmp_path / "000000000099.candles.arrow.tmp").write_bytes(b"half a write")  # a crash mid-write
    target.up = True
    second = SpooledDelivery(Spool(tmp_path, 10_000_000), target.send)
    assert len(second.spool) == 3 and second.spool.rows == 300
    assert second.drain() == 3
    assert [n for _, n, _ in target.received] == [0, 100, 200]
    assert target.received[0][2] == 1  # the first batch kept the note of its first try across the restart


def test_the_byte_cap_bounds_the_spool_and_waits_for_room(tmp_path):
    target = Target()
    target.up = False
    size = batch(0).nbytes
    delivery = SpooledDelivery(Spool(tmp_path, int(size * 2.5)), target.send, Backoff(base=0.01, cap=0.02),
                               block_seconds=0.2)
    delivery.deliver("candles", batch(0))
    delivery.deliver("candles", batch(100))
    with pytest.raises(SpoolFull, match="is full"):
        delivery.deliver("candles", batch(200))
    assert len(delivery.spool) == 2 and delivery.spool.bytes <= int(size * 2.5)
    target.up = True
    delivery.deliver("candles", batch(300))  # room is made by delivering the older batches first
    assert [n for _, n, _ in target.received] == [0, 100, 300]


def test_backoff_grows_and_respects_retry_after():
    clock = Clock()
    backoff = Backoff(base=0.5, cap=4, monotonic=clock)
    assert [backoff.failed(None) for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert backoff.failed(30.0) == 30.0  # the server asked for longer
    assert not backoff.due()
    clock.t += 30.0
    assert backoff.due()
    backoff.succeeded()
    assert backoff.failed(None) == 0.5


def test_drain_all_gives_up_after_its_timeout(tmp_path):
    target = Target()
    target.up = False
    target.retry_after = 0.05
    delivery = SpooledDelivery(Spool(tmp_path, 10_000_000), target.send, Backoff(base=0.01, cap=0.02))
    delivery.deliver("candles", batch(0))
    with pytest.raises(SinkUnavailable):
        delivery.drain_all(timeout=0.3)
    assert len(delivery.spool) == 1 and target.received == []
