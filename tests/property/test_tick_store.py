"""The tick store's windows against their definition: every retained tick of every window the queued ticks touch."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from ticks_strategies import tick_frames

from mdstream.contract import columns as c
from mdstream.contract.schema import TICK_SCHEMA
from mdstream.engine.store import SEQ, TickStore, W
from mdstream.kernel.candles import sparse_many
from mdstream.kernel.grid import SPARSE_COLUMNS

BASE_US = 15_000_000
WINDOW = [c.EXCHANGE, c.SYMBOL, c.TIMESTAMP_IN]


def by_definition(store: TickStore, queued: pl.DataFrame) -> pl.DataFrame:
    """sparse windows of every retained tick whose (exchange, symbol, base window) a queued tick shares."""
    keys = queued.select(c.EXCHANGE, c.SYMBOL, W).unique()
    mine = store.ticks.join(keys, on=[c.EXCHANGE, c.SYMBOL, W], how="semi")
    return sparse_many(mine, "15s").select(SPARSE_COLUMNS)


def same_windows(got: pl.DataFrame, want: pl.DataFrame) -> None:
    """The same windows with the same values: counts, prices and times exact; sums to the last bits, as a
    single series' windows add its trades in arrival order (kernel/unordered.py), not in trade order."""
    assert_frame_equal(got.sort(WINDOW), want.sort(WINDOW), check_exact=False, rel_tol=1e-12, abs_tol=0.0)


@settings(max_examples=60, deadline=None)
@given(tick_frames(max_rows=90), st.data())
def test_windows_recompute_every_touched_window_from_all_its_retained_ticks(ticks, data):
    """Batches in any order (late ticks reach windows of earlier batches), folds after any of them, and prunes
    at any floor: the windows of what is queued are those of the definition."""
    order = data.draw(st.permutations(range(ticks.height)))
    shuffled = ticks[list(order)]
    cuts = sorted(set(data.draw(st.lists(st.integers(1, max(1, ticks.height - 1)), max_size=6))))
    store, queued, start = TickStore(BASE_US), [], 0
    for end in [*cuts, ticks.height]:
        fresh, _ = store.add(shuffled.slice(start, end - start))
        start = end
        if fresh.height:
            queued.append(fresh)
        if queued and data.draw(st.booleans()):  # a fold takes everything queued
            pending = pl.concat(queued)
            same_windows(store.windows(pending, "15s"), by_definition(store, pending))
            queued = []
            if store.ticks.height and data.draw(st.booleans()):
                stamps = store.ticks.get_column(W)
                store.prune(data.draw(st.integers(int(stamps.min()), int(stamps.max()) + BASE_US)))
    if queued:
        pending = pl.concat(queued)
        same_windows(store.windows(pending, "15s"), by_definition(store, pending))


def test_a_late_tick_brings_back_its_whole_window_and_no_other():
    """A late trade in an earlier batch's window recomputes that window from both batches' ticks; a window of the
    earlier batch it does not touch stays out."""
    t0 = 1_704_067_200_000_000  # 2024-01-01 00:00 UTC

    def ticks(rows: list[tuple[int, str, float]]) -> pl.DataFrame:
        """(us after t0, id, price) rows of one BTCUSDT series."""
        stamps = pl.Series([t0 + us for us, _, _ in rows]).cast(pl.Datetime("us", "UTC"))
        return pl.DataFrame({
            c.EXCHANGE: "binance", c.SYMBOL: "BTCUSDT", c.TIMESTAMP: stamps, c.LOCAL_TIMESTAMP: stamps,
            c.ID: [i for _, i, _ in rows], c.SIDE: c.SIDE_BUY, c.PRICE: [p for _, _, p in rows], c.AMOUNT: 1.0,
        }).select([pl.col(k).cast(v) for k, v in TICK_SCHEMA.items()])

    store = TickStore(BASE_US)
    store.add(ticks([(1_000_000, "1", 100.0), (2_000_000, "2", 101.0), (16_000_000, "3", 102.0)]))
    late, _ = store.add(ticks([(3_000_000, "4", 99.0), (31_000_000, "5", 103.0)]))
    got = store.windows(late, "15s").sort(c.TIMESTAMP_IN)
    assert [w.timestamp() - t0 / 1e6 for w in got.get_column(c.TIMESTAMP_IN)] == [0.0, 30.0]
    first = got.row(0, named=True)
    assert (first[c.OPEN], first[c.HIGH], first[c.LOW], first[c.CLOSE], first[c.TRADES]) == (100.0, 101.0, 99.0, 99.0, 3)
    assert late.get_column(SEQ).to_list() == [3, 4]


def test_queued_ticks_pruned_before_their_fold_give_no_window():
    """Ticks queued for a fold but pruned first (the floor passed them meanwhile) leave nothing to recompute:
    no window, and no error."""
    t0 = 1_704_067_200_000_000
    batch = pl.DataFrame({
        c.EXCHANGE: ["binance-futures"] * 2, c.SYMBOL: ["BTCUSDT"] * 2, c.TIMESTAMP: [t0, t0 + 1_000],
        c.LOCAL_TIMESTAMP: [t0 + 5, t0 + 1_005], c.ID: ["1", "2"], c.SIDE: ["buy", "sell"], c.PRICE: [100.0, 101.0],
        c.AMOUNT: [1.0, 2.0],
    }).with_columns(pl.col(c.TIMESTAMP, c.LOCAL_TIMESTAMP).cast(TICK_SCHEMA[c.TIMESTAMP])).cast(TICK_SCHEMA)
    store = TickStore(BASE_US)
    fresh, _ = store.add(batch)
    store.prune(t0 + 10 * BASE_US)
    assert len(store) == 0 and store.windows(fresh, "15s").height == 0
