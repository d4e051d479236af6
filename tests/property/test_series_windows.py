"""series_windows (rows left where they are when out of order) equals the windows of the rows sorted by the full
trade order rule, in every column: amounts and prices are small dyadic numbers, so every sum is exact in any order."""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl
from hypothesis import example, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from mdstream.contract import columns as c
from mdstream.contract.instruments import INVERSE, Instrument, to_frame
from mdstream.contract.schema import TICK_SCHEMA
from mdstream.kernel.candles import series_windows, sparse_from_ticks
from mdstream.kernel.order import ID_NUMBER, _full_sort

_T0 = int(datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp() * 1e6)
_ids = st.one_of(
    st.none(), st.integers(0, 120).map(str), st.sampled_from(["007", "7", "-3", "x", "10a", "", "99999999999"])
)
# (exchange time in seconds: few values, so 15 s windows hold ties and late rows cross window edges;
#  receive time step or missing; id; price eighths; amount quarters; side)
_row = st.tuples(st.integers(0, 50), st.one_of(st.none(), st.integers(-2, 3)), _ids, st.integers(1, 64),
                 st.integers(1, 16), st.sampled_from(["buy", "sell", "unknown"]))


def _frame(rows: list[tuple]) -> pl.DataFrame:
    """Ticks of one series, in the order given."""
    frame = pl.DataFrame(
        {
            c.EXCHANGE: ["deribit"] * len(rows),
            c.SYMBOL: ["BTC-PERPETUAL"] * len(rows),
            c.TIMESTAMP: [_T0 + t * 1_000_000 for t, *_ in rows],
            c.LOCAL_TIMESTAMP: [None if lt is None else _T0 + t * 1_000_000 + lt * 1000 for t, lt, *_ in rows],
            c.ID: [i for _, _, i, *_ in rows],
            c.SIDE: [side for *_, side in rows],
            c.PRICE: [p / 8 for *_, p, _, _ in rows],
            c.AMOUNT: [q / 4 for *_, q, _ in rows],
        },
        schema_overrides={c.TIMESTAMP: pl.Int64, c.LOCAL_TIMESTAMP: pl.Int64, c.ID: pl.String},
    )
    return frame.with_columns(pl.col(c.TIMESTAMP, c.LOCAL_TIMESTAMP).cast(TICK_SCHEMA[c.TIMESTAMP]))


def _reference(frame: pl.DataFrame, timeframe: str, instruments: pl.DataFrame | None) -> pl.DataFrame:
    """The windows of the rows in trade order (a stable sort by every order key)."""
    return sparse_from_ticks(_full_sort(frame), timeframe, instruments)


_INVERSE = to_frame([Instrument("deribit", "BTC-PERPETUAL", kind=INVERSE, contract_size=10.0)])


@settings(max_examples=300, deadline=None)
@given(st.lists(_row, min_size=1, max_size=80), st.sampled_from(["none", "time", "all"]), st.booleans(),
       st.sampled_from(["15s", "1m"]), st.booleans())
@example([(20, 0, "2", 8, 1, "buy"), (14, 0, "3", 16, 1, "sell"), (20, 0, "1", 24, 1, "buy")], "none", False,
         "15s", False)  # a late trade crossing back into the window before: that window has two runs
@example([(5, 2, "1", 8, 1, "buy"), (5, 1, "2", 16, 1, "sell"), (5, None, "3", 24, 1, "buy")], "time", True,
         "15s", False)  # one tie whose receive times fall back, one missing
def test_unmoved_windows_equal_sorted_windows(rows, presort, with_numbers, timeframe, inverse):
    frame = _frame(rows)
    if presort == "time":  # exchange times in order, tie-breakers jittered
        frame = frame.sort(c.TIMESTAMP, maintain_order=True)
    elif presort == "all":  # already in trade order: the windows are taken as the rows stand
        frame = _full_sort(frame)
    if with_numbers:
        frame = frame.with_columns(pl.col(c.ID).cast(pl.Int64, strict=False).alias(ID_NUMBER))
    instruments = _INVERSE if inverse else None
    assert_frame_equal(series_windows(frame, timeframe, instruments), _reference(frame, timeframe, instruments))


def test_equal_keys_keep_file_order_for_open_and_close():
    """Trades equal in every order key: the open is the first in the file, the close the last, as a stable sort
    leaves them; a late trade before them in the file does not change that."""
    rows = [(3, 0, None, 8, 1, "buy"), (3, 0, None, 16, 1, "buy"), (1, 0, "9", 40, 1, "sell"),
            (3, 0, None, 24, 1, "buy")]
    out = series_windows(_frame(rows), "15s")
    assert out.row(0, named=True)[c.OPEN] == 40 / 8  # the late trade has the earliest exchange time
    assert out.row(0, named=True)[c.CLOSE] == 24 / 8
    assert_frame_equal(out, _reference(_frame(rows), "15s", None))


def test_a_flagged_exchange_time_gives_the_same_windows_every_time():
    """Exchange times flagged sorted (a replay's merged input is) do not change the windows, and the windows are
    the same bits on every run (flagged, Polars would sum them down a path whose sums vary from run to run)."""
    n = 600_000
    k = pl.int_range(n, eager=True)
    frame = pl.DataFrame({
        c.EXCHANGE: "binance-futures", c.SYMBOL: "BTCUSDT",
        c.TIMESTAMP: (k * 500 + _T0).cast(TICK_SCHEMA[c.TIMESTAMP]), c.LOCAL_TIMESTAMP: (k * 500 + _T0 + 7).cast(
            TICK_SCHEMA[c.LOCAL_TIMESTAMP]), c.ID: k, c.SIDE: pl.Series(["buy", "sell", "buy"] * (n // 3)),
        c.PRICE: 100 + (k % 97) / 7, c.AMOUNT: (k % 89 + 1) / 3,  # sums that depend on their order in the last bit
    }).with_columns(pl.col(c.ID).alias(ID_NUMBER))
    flagged = frame.with_columns(pl.col(c.TIMESTAMP).set_sorted())
    first = series_windows(flagged, "15s")
    assert all(series_windows(flagged, "15s").equals(first) for _ in range(6))
    assert first.equals(series_windows(frame, "15s"))
