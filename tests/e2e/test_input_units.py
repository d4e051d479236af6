"""Explicit input files give the same candles however they are named or grouped: Tardis-named day files (one unit
per day), the same files named any way (taken apart by their footprints), and one file holding every day."""

from __future__ import annotations

import gzip
from datetime import date

import duckdb
import polars as pl

from mdstream.contract import columns as c
from support.cli_run import mdstream
from support.day_files import day_files

COMPARED = [c.OPEN, c.HIGH, c.LOW, c.CLOSE, c.VOLUME, c.TRADES, c.GAP, *c.FEATURE_COLUMNS]


def candles(db) -> pl.DataFrame:
    """candles_latest in key order."""
    with duckdb.connect(str(db), read_only=True) as con:
        return con.sql("SELECT * FROM candles_latest ORDER BY symbol, timeframe, timestamp_in").pl()


def backfill(tmp_path, name: str, paths) -> pl.DataFrame:
    """Backfill `paths` into a new file; its candles."""
    db = tmp_path / f"{name}.duckdb"
    run = mdstream("backfill", *[a for p in paths for a in ("--input", str(p))], "--duckdb", str(db), "--quiet")
    assert run.code == 0, run.text
    return candles(db)


def test_naming_and_grouping_do_not_change_the_candles(tmp_path):
    btc = day_files(tmp_path / "t", date(2024, 1, 1), 3, n=3_000)
    eth = day_files(tmp_path / "t", date(2024, 1, 1), 3, n=2_000, symbol="ETHUSDT")
    tardis = backfill(tmp_path, "tardis", btc + eth)
    # each day's two series in one file named any way: three units of two series each
    mixed = []
    for i in range(3):
        path = tmp_path / f"day{i}.csv.gz"
        lines = [gzip.decompress(p.read_bytes()).decode().splitlines() for p in (btc[i], eth[i])]
        path.write_bytes(gzip.compress(("\n".join(lines[0] + lines[1][1:]) + "\n").encode()))
        mixed.append(path)
    apart = backfill(tmp_path, "apart", list(reversed(mixed)))
    whole = tmp_path / "all.csv.gz"
    rows = [gzip.decompress(p.read_bytes()).decode().splitlines() for p in mixed]
    whole.write_bytes(gzip.compress(("\n".join(rows[0] + rows[1][1:] + rows[2][1:]) + "\n").encode()))
    together = backfill(tmp_path, "whole", [whole])
    same(apart, together)
    # Tardis day files cover whole days, so their last day runs on to midnight: the windows after the last trade
    # are the only difference.
    # and files named otherwise end where their last trade is: the windows holding it are cut short (feed)
    matched = tardis.join(together.select(KEY), on=KEY, how="semi")
    same(matched, together, [col for col in COMPARED if col != c.GAP])
    differ = together.filter(pl.col(c.GAP).ne_missing(matched[c.GAP]))
    assert differ.height <= 2 * 6 and (differ[c.GAP] == c.GAP_FEED).all()
    assert tardis.join(together.select(KEY), on=KEY, how="anti")[c.TRADES].sum() == 0


KEY = [c.SYMBOL, c.TIMEFRAME, c.TIMESTAMP_IN]


def same(one: pl.DataFrame, other: pl.DataFrame, columns: list[str] = COMPARED) -> None:
    """Equal candles: keys and integers exactly, floats within 1e-9 relative, nulls in the same places."""
    assert one.select(KEY).equals(other.select(KEY))
    for column in columns:
        left, right = one[column], other[column]
        if left.dtype == pl.Float64:
            assert ((left - right).abs() <= 1e-9 * right.abs().fill_null(1.0)).fill_null(True).all(), column
            assert (left.is_null() == right.is_null()).all(), column
        else:
            assert left.to_list() == right.to_list(), column


def into(db, *paths) -> None:
    """One backfill run of `paths` into `db` (kept between runs)."""
    run = mdstream("backfill", *[a for p in paths for a in ("--input", str(p))], "--duckdb", str(db), "--quiet")
    assert run.code == 0, run.text


def test_series_folded_in_one_pass_equal_each_series_alone(tmp_path):
    """The series of one unit fold in one engine pass: day 2 of BTCUSDT (continuing day 1 from the file) beside
    the first day of ETHUSDT gives the candles each series gets backfilled alone, features and gaps included."""
    btc = day_files(tmp_path / "t", date(2024, 1, 1), 2, n=3_000)
    eth = day_files(tmp_path / "t", date(2024, 1, 2), 1, n=2_000, symbol="ETHUSDT")
    into(tmp_path / "together.duckdb", btc[0])
    into(tmp_path / "together.duckdb", btc[1], eth[0])  # one unit: the day's two files
    into(tmp_path / "btc.duckdb", btc[0])
    into(tmp_path / "btc.duckdb", btc[1])
    into(tmp_path / "eth.duckdb", eth[0])
    together = candles(tmp_path / "together.duckdb")
    for symbol, alone in (("BTCUSDT", "btc"), ("ETHUSDT", "eth")):
        mine = together.filter(pl.col(c.SYMBOL) == symbol)
        assert mine.height > 0
        same(mine, candles(tmp_path / f"{alone}.duckdb"))
