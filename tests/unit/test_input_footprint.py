"""Grouping explicit input files by the days their trades cover: apart when no series-day is shared and every
series moves forward; together (or not at all) otherwise."""

from __future__ import annotations

from datetime import date

import polars as pl

from mdstream.jobs.backfill_inputs import input_units
from mdstream.jobs.input_footprint import footprint, groups
from support.day_files import day_file

BTC, ETH = ("binance-futures", "BTCUSDT"), ("binance-futures", "ETHUSDT")


def test_disjoint_days_are_apart_in_time_order():
    prints = [{BTC: (3, 3)}, {BTC: (1, 1)}, {BTC: (2, 2)}]
    assert groups(prints) == [([1], True), ([2], True), ([0], False)]


def test_shared_days_are_together():
    prints = [{BTC: (1, 2)}, {BTC: (2, 3)}, {BTC: (5, 5)}]
    assert groups(prints) == [([0, 1], True), ([2], False)]


def test_a_group_spanning_another_absorbs_it():
    # 0 and 1 share day 2; together they span day 4, which 2 holds
    assert groups([{BTC: (1, 2)}, {BTC: (2, 6)}, {BTC: (4, 4)}]) == [([0, 1, 2], False)]


def test_series_going_back_in_time_or_ending_unevenly_cannot_be_taken_apart():
    assert groups([{BTC: (1, 1), ETH: (9, 9)}, {BTC: (2, 2), ETH: (5, 5)}]) is None
    assert groups([{BTC: (1, 1), ETH: (1, 1)}, {BTC: (2, 2)}]) is None
    assert groups([{BTC: (1, 1)}, {ETH: (1, 1)}]) == [([0], False), ([1], False)]  # other series: independent


def test_footprint_reads_three_columns_and_gives_up_on_odd_files(tmp_path):
    path = day_file(tmp_path, date(2024, 1, 2), n=300)
    day = (date(2024, 1, 2) - date(1970, 1, 1)).days
    assert footprint(path) == {BTC: (day, day)}
    odd = tmp_path / "odd.csv"
    pl.DataFrame({"exchange": ["binance-futures"], "symbol": ["BTCUSDT"], "timestamp": ["yesterday"]}).write_csv(odd)
    assert footprint(odd) is None
    assert footprint(tmp_path / "missing.csv") is None


def test_input_units_of_files_named_any_way(tmp_path):
    files = [day_file(tmp_path, date(2024, 1, 1 + i), n=200) for i in range(3)]
    renamed = tuple(p.rename(p.with_name(f"x{i}.csv.gz")) for i, p in enumerate(files))
    units = input_units(tuple(reversed(renamed)))
    assert [u.paths for u in units] == [(renamed[0],), (renamed[1],), (renamed[2],)]
    assert [u.explicit_end for u in units] == [True, True, False]
    assert len(input_units(renamed[:1])) == 1
