"""order_ticks' fast path (one integer sort, then only broken tie groups sorted) equals the full 4-key sort."""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl
from hypothesis import example, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from mdstream.contract import columns as c
from mdstream.contract.schema import TICK_SCHEMA
from mdstream.kernel.candles import WINDOW_INPUTS
from mdstream.kernel.order import ID_NUMBER, _full_sort, order_ticks

_T0 = int(datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp() * 1e6)

# Few distinct values, so ties at every level are frequent; ids of varied length, non-numeric and missing.
_ids = st.one_of(
    st.none(), st.integers(0, 120).map(str), st.sampled_from(["007", "7", "-3", "x", "10a", "", "99999999999"])
)
_row = st.tuples(st.integers(0, 6), st.one_of(st.none(), st.integers(0, 4)), _ids)


def _frame(rows: list[tuple[int, int | None, str | None]]) -> pl.DataFrame:
    """Ticks of one series from (timestamp step, receive step, id) rows; the row number is kept as the price so
    any change of order shows."""
    n = len(rows)
    frame = pl.DataFrame(
        {
            c.EXCHANGE: ["binance-futures"] * n,
            c.SYMBOL: ["BTCUSDT"] * n,
            c.TIMESTAMP: [_T0 + t * 1000 for t, _, _ in rows],
            c.LOCAL_TIMESTAMP: [None if lt is None else _T0 + (t + lt) * 1000 for t, lt, _ in rows],
            c.ID: [i for _, _, i in rows],
            c.SIDE: ["buy"] * n,
            c.PRICE: [float(k) for k in range(n)],
            c.AMOUNT: [1.0] * n,
        },
        schema_overrides={c.TIMESTAMP: pl.Int64, c.LOCAL_TIMESTAMP: pl.Int64, c.ID: pl.String},
    )
    return frame.with_columns(pl.col(c.TIMESTAMP, c.LOCAL_TIMESTAMP).cast(TICK_SCHEMA[c.TIMESTAMP]))


@settings(max_examples=400, deadline=None)
@given(st.lists(_row, max_size=60), st.booleans(), st.booleans())
@example([(0, None, "007"), (0, None, "7")], False, True)  # equal numbers, the shorter text first
@example([(0, 1, "-3"), (0, 1, "5")], True, True)  # a negative id: its text is longer
def test_fast_path_equals_full_sort(rows, presort_time, with_numbers):
    frame = _frame(rows)
    if presort_time:  # the common case: exchange times in order, tie-breakers jittered
        frame = frame.sort(c.TIMESTAMP, maintain_order=True)
    if with_numbers:  # the reader's parsed ids ride along, as in a backfill
        frame = frame.with_columns(pl.col(c.ID).cast(pl.Int64, strict=False).alias(ID_NUMBER))
    assert_frame_equal(order_ticks(frame), _full_sort(frame))
    # only the columns the windows read are moved and returned: the same rows in the same order
    assert_frame_equal(order_ticks(frame, WINDOW_INPUTS), _full_sort(frame).select(WINDOW_INPUTS))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=2, max_size=80), st.randoms())
def test_rising_ids_with_jittered_receive_times_still_sorted(steps, rnd):
    """Ids rising but receive times jittered: the shortcut must not trust the ids alone."""
    rows = [(t, lt, str(1000 + k)) for k, (t, lt) in enumerate(sorted(steps, key=lambda s: s[0]))]
    frame = _frame(rows).with_columns(pl.col(c.ID).cast(pl.Int64).alias(ID_NUMBER))
    assert_frame_equal(order_ticks(frame), _full_sort(frame))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.one_of(st.none(), st.integers(0, 3)),
                          st.one_of(st.integers(-20, 20), st.integers(0, 10**12))), max_size=60), st.booleans())
@example([(0, 1, -3), (0, 1, 5)], False)  # a negative id first: its text is longer, so it comes second
def test_integer_ids_order_like_their_text(rows, rising):
    """Ids read as integers (a clean file whose ticks are not stored): the fast path skips the text-length check
    only where that is the same order as comparing their text, i.e. for non-negative integers."""
    if rising:  # a Tardis day: ids and times rise together
        rows = [(t, lt, 10**9 + k) for k, (t, lt, _) in enumerate(sorted(rows, key=lambda r: r[0]))]
    frame = _frame([(t, lt, str(i)) for t, lt, i in rows]).with_columns(pl.col(c.ID).cast(pl.Int64))
    frame = frame.sort(c.TIMESTAMP, maintain_order=True).with_columns(pl.col(c.ID).alias(ID_NUMBER))
    assert_frame_equal(order_ticks(frame), _full_sort(frame))


def test_already_ordered_day_is_returned_as_is():
    frame = _frame([(t // 3, 1, str(100 + t)) for t in range(30)])
    assert order_ticks(frame) is frame


def test_only_broken_tie_groups_move():
    # Two tie groups: the first in order, the second with receive times reversed.
    frame = _frame([(0, 1, "1"), (0, 2, "2"), (1, 3, "3"), (1, 2, "4"), (2, 0, "5")])
    out = order_ticks(frame)
    assert out[c.ID].to_list() == ["1", "2", "4", "3", "5"]
    assert_frame_equal(out, _full_sort(frame))


def test_input_frame_is_left_untouched():
    frame = _frame([(0, 2, "1"), (0, 1, "2"), (1, 1, "3")])
    before = frame.clone()
    out = order_ticks(frame)
    assert out[c.ID].to_list() == ["2", "1", "3"]
    assert_frame_equal(frame, before)


def test_windows_of_ticks_sorted_by_exchange_time_sum_the_same_every_time():
    """The exchange-time sort leaves the column unflagged (a flagged one sent the window sums down a path 3x slower
    whose order of partial sums varied): 1M out-of-order trades, windows equal bit for bit run after run."""
    from benchmarks.shapes import out_of_order
    from mdstream.contract.schema import conform
    from mdstream.kernel.candles import sparse_from_ticks

    ordered = order_ticks(conform(out_of_order(1_000_000), TICK_SCHEMA), WINDOW_INPUTS)
    assert not ordered[c.TIMESTAMP].flags["SORTED_ASC"]
    first = sparse_from_ticks(ordered, "15s")
    assert all(sparse_from_ticks(ordered, "15s").equals(first) for _ in range(8))
