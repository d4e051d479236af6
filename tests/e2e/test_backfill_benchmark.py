"""The backfill benchmark runs end to end on every shape at its quick size (no timing assertions)."""

from __future__ import annotations

import polars as pl
import pytest

from benchmarks import backfill
from benchmarks.shapes import SHAPES


def test_quick_benchmark_measures_every_shape_in_both_modes(tmp_path, capsys):
    figures = backfill.main(["--quick", "--folder", str(tmp_path)])
    assert {(f.shape, f.mode) for f in figures} == {(s, m) for s in SHAPES for m in ("in-process", "whole-process")}
    assert all(f.floor_s > 0 and f.backfill_s > 0 for f in figures)
    out = capsys.readouterr().out
    assert all(shape in out for shape in SHAPES)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_each_shape_is_what_its_name_says(shape):
    day = SHAPES[shape](50_000)
    assert day.height == 50_000
    per = day.partition_by("symbol")
    ts_sorted = all(p["timestamp"].is_sorted() for p in per)
    lts_sorted = all(p["local_timestamp"].is_sorted() for p in per)
    assert ts_sorted == (shape != "out-of-order")
    assert lts_sorted == (shape not in ("jitter",))
    assert (len(per) > 1) == (shape == "multi-symbol")
    ties = day.select((pl.col("timestamp").diff() == 0).sum()).item()
    assert (ties > 0) if shape in ("ms-ties", "bursts", "jitter") else True
