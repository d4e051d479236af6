"""The backfill runner: multi-day input is one continuous grid, re-runs are idempotent, ranges bound the grid."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import polars as pl
import pytest

from benchmarks.shapes import out_of_order
from mdstream.contract import columns as c
from mdstream.contract.clock import ManualClock
from mdstream.contract.schema import CANDLE_SCHEMA, TICK_SCHEMA, conform
from mdstream.contract.timeframes import ALL_TIMEFRAMES
from mdstream.inputs.sample import trades_day, write_csv_gz
from mdstream.jobs.backfill import BackfillOptions, run_backfill
from mdstream.kernel.candles import candles_from_ticks
from mdstream.kernel.features import STATE_COLUMNS, add_features
from mdstream.sinks.duckdb import DuckDBSink

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)
KEY = [*c.SERIES_KEY, c.TIMESTAMP_IN]


def two_days(tmp_path):
    paths, frames = [], []
    for day, seed in ((date(2024, 1, 1), 1), (date(2024, 1, 2), 2)):
        frame = trades_day(20_000, day=day, seed=seed)
        if day.day == 2:  # the second day continues the first day's ids, as a real feed does
            frame = frame.with_columns((pl.col(c.ID).cast(pl.Int64) + 20_000).cast(pl.String))
        paths.append(write_csv_gz(frame, tmp_path / f"binance-futures_trades_{day}_BTCUSDT.csv.gz"))
        frames.append(frame)
    ticks = pl.concat(frames).with_columns(
        pl.from_epoch(c.TIMESTAMP, time_unit="us").dt.replace_time_zone("UTC"),
        pl.from_epoch(c.LOCAL_TIMESTAMP, time_unit="us").dt.replace_time_zone("UTC"),
    )
    return paths, conform(ticks, TICK_SCHEMA)


def stored(db) -> pl.DataFrame:
    sink = DuckDBSink(db)
    try:
        return pl.from_arrow(sink.con.sql("SELECT * FROM candles_latest").to_arrow_table())
    finally:
        sink.close()


def test_two_days_are_one_continuous_grid_with_continuous_features(tmp_path):
    paths, ticks = two_days(tmp_path)
    db = tmp_path / "x.duckdb"
    sink = DuckDBSink(db)
    summary = run_backfill(BackfillOptions(inputs=tuple(paths), timeframes=ALL_TIMEFRAMES), sink, ManualClock(NOW))
    sink.close()
    assert [d.day for d in summary.days] == [date(2024, 1, 1), date(2024, 1, 2)]
    got = stored(db).sort(KEY)
    # Tardis day files cover whole days: the last day runs on to midnight, and nothing in it is missing.
    whole = add_features(candles_from_ticks(ticks, now=NOW)).collect(engine="in-memory").drop(STATE_COLUMNS)
    whole = conform(whole, CANDLE_SCHEMA).sort(KEY)
    assert got.height == whole.height
    for col in [c.OPEN, c.CLOSE, c.VOLUME, c.TRADES, c.GAP, "ema_20", "macd_signal", "rsi_5", "vwap_day", "volatility_10"]:
        a, b = got[col], whole[col]
        assert (a.is_null() == b.is_null()).all(), col
        if a.dtype == pl.Float64:
            assert ((a - b).abs() <= 1e-9 * b.abs().clip(lower_bound=1.0)).fill_null(True).all(), col
        else:
            assert (a == b).fill_null(True).all(), col
    days = got.filter(pl.col(c.TIMEFRAME) == "1d")
    assert days[c.TIMESTAMP_IN].dt.date().to_list() == [date(2024, 1, 1), date(2024, 1, 2)]
    assert days[c.TRADES].to_list() == [20_000, 20_000]


def test_a_rerun_replaces_days_and_an_explicit_range_fills_to_its_end(tmp_path):
    paths, _ = two_days(tmp_path)
    db = tmp_path / "x.duckdb"
    opts = BackfillOptions(inputs=tuple(paths), timeframes=("1m", "1d"), from_date=date(2024, 1, 1), to_date=date(2024, 1, 4))
    for _ in range(2):
        sink = DuckDBSink(db)
        run_backfill(opts, sink, ManualClock(NOW))
        sink.close()
    got = stored(db)
    sink = DuckDBSink(db)
    raw = sink.con.sql("SELECT count(*) FROM candles").fetchall()[0][0]
    sink.close()
    assert raw == got.height, "a re-run must not leave two copies"
    minutes = got.filter(pl.col(c.TIMEFRAME) == "1m").sort(c.TIMESTAMP_IN)
    # The range ends on 2024-01-04 (exclusive): Jan 3 had no trades and is a quiet day, not a missing one.
    assert minutes[c.TIMESTAMP_IN][-1] == datetime(2024, 1, 3, 23, 59, tzinfo=timezone.utc)
    assert minutes.filter(pl.col(c.TIMESTAMP_IN) >= datetime(2024, 1, 3, tzinfo=timezone.utc))[c.GAP].unique().to_list() == [c.GAP_QUIET]
    assert minutes[c.TIMESTAMP_IN].diff().drop_nulls().unique().to_list() == [timedelta(minutes=1)]
    assert got.filter(pl.col(c.TIMEFRAME) == "1d").height == 3


def test_a_files_quarantine_and_truncation_belong_to_its_own_series(tmp_path):
    good = trades_day(2_000, day=date(2024, 1, 1), symbol="BTCUSDT", seed=3)
    bad = trades_day(2_000, day=date(2024, 1, 1), symbol="ETHUSDT", seed=4)
    btc = write_csv_gz(good, tmp_path / "binance-futures_trades_2024-01-01_BTCUSDT.csv.gz")
    eth = tmp_path / "binance-futures_trades_2024-01-01_ETHUSDT.csv"
    text = bad.write_csv().splitlines()
    text[5] = text[5].replace(",buy,", ",sideways,").replace(",sell,", ",sideways,")
    eth.write_text("\n".join(text) + "\n")
    db = tmp_path / "x.duckdb"
    sink = DuckDBSink(db)
    summary = run_backfill(BackfillOptions(inputs=(btc, eth), timeframes=("1m",)), sink, ManualClock(NOW))
    stored = sink.con.sql("SELECT count(*) FROM quarantine").fetchall()[0][0]
    sink.close()
    by_symbol = {d.symbol: d for d in summary.days}
    assert by_symbol["ETHUSDT"].quarantined == 1 and by_symbol["BTCUSDT"].quarantined == 0
    assert summary.quarantined == 1 and stored == 1


def test_storing_ticks_or_not_gives_the_same_candles(tmp_path):
    """Without --store-ticks integer ids are read as numbers (faster); the candles are the same to the bit."""
    paths, _ = two_days(tmp_path)
    out = {}
    for store in (False, True):
        db = tmp_path / f"store_{store}.duckdb"
        sink = DuckDBSink(db)
        run_backfill(BackfillOptions(inputs=tuple(paths), store_ticks=store), sink, ManualClock(NOW))
        sink.close()
        out[store] = stored(db).sort(KEY)
    assert out[False].height == out[True].height > 0
    assert out[False].equals(out[True])



@pytest.mark.slow
def test_the_same_file_gives_bit_identical_candles_on_every_run(tmp_path):
    """Rows out of exchange-time order (some venues) are sorted before the windows are summed; a day of 3M such
    trades once gave volumes differing in the last bit between two runs (sums taken in parts, in varying order)."""
    path = write_csv_gz(out_of_order(3_000_000), tmp_path / "binance-futures_trades_2024-01-01_BTCUSDT.csv.gz")
    runs = []
    for n in range(4):
        sink = DuckDBSink(tmp_path / f"run{n}.duckdb")
        run_backfill(BackfillOptions(inputs=(path,), timeframes=ALL_TIMEFRAMES), sink, ManualClock(NOW))
        sink.close()
        runs.append(stored(tmp_path / f"run{n}.duckdb").sort(KEY))
    for other in runs[1:]:
        assert other.equals(runs[0])
