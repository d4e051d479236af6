"""The timeframe registry: one entry makes a timeframe work end to end (backfill, replay, views, verify, chart),
and spellings that mean a month or a week to traders are refused instead of read as minutes."""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl
import pytest

from mdstream.contract import columns as c
from mdstream.contract import timeframes as tfm
from mdstream.contract.errors import ConfigError
from mdstream.sinks import sqlfiles
from support.cli_run import mdstream
from support.day_files import day_file

DAY = date(2024, 3, 5)
SUMS = [c.VOLUME, c.BASE_VOLUME, c.QUOTE_VOLUME, c.BUY_VOLUME, c.SELL_VOLUME, c.TRADES]


def test_registry_is_a_chain_of_divisors_with_unique_spellings():
    widths = [tf.width_us for tf in tfm.REGISTRY]
    assert widths == sorted(widths)
    assert all(b % a == 0 for a, b in zip(widths, widths[1:]))
    assert tfm.US_PER_DAY % widths[-1] == 0
    spellings = [tf.name for tf in tfm.REGISTRY] + [a for tf in tfm.REGISTRY for a in tf.aliases]
    assert len(spellings) == len(set(spellings))
    assert set(tfm.ALL_TIMEFRAMES) < set(tfm.SUPPORTED_TIMEFRAMES)
    assert "1h" in tfm.SUPPORTED_TIMEFRAMES and "1h" not in tfm.ALL_TIMEFRAMES


@pytest.mark.parametrize("text", ["1M", "3M", "1mo", "1mon", "1month", "1w", "1W"])
def test_months_and_weeks_are_refused(text):
    with pytest.raises(ConfigError, match="month or a week"):
        tfm.normalize(text)


@pytest.mark.parametrize(("text", "name"), [("1m", "1m"), ("1min", "1m"), ("1H", "1h"), ("60m", "1h"),
                                            ("24h", "1d"), (" 15S ", "15s"), ("240m", "4h")])
def test_spellings_of_supported_timeframes(text, name):
    assert tfm.normalize(text) == name


def test_sql_renders_every_registered_timeframe():
    widths = duckdb.sql(f"SELECT * FROM (VALUES {sqlfiles.timeframe_widths()}) t(tf, us)").fetchall()
    assert dict(widths) == tfm.TIMEFRAME_US
    for dialect in ("duckdb", "bigquery"):
        text = sqlfiles.read(f"{dialect}/views.sql")
        assert "${timeframe_views}" not in text
        for name in sqlfiles.view_names():
            assert f"{name}" in text
    assert "${project}" in sqlfiles.read("bigquery/views.sql")  # left for the BigQuery renderer
    assert "$from_us" in sqlfiles.read("duckdb/candles_from_ticks.sql")  # query parameters untouched


def test_the_cli_refuses_a_month_before_reading_anything(tmp_path):
    path = day_file(tmp_path, DAY, n=500)
    for args in (["backfill", "--input", str(path)], ["stream", "--source", "synthetic", "--duration", "1"]):
        run = mdstream(*args, "--timeframes", "1m,1M", "--duckdb", str(tmp_path / "x.duckdb"))
        assert run.code != 0 and "month or a week" in run.err, run.text
        assert "Traceback" not in run.text
    assert not (tmp_path / "x.duckdb").exists()


def _latest(db, timeframe: str) -> pl.DataFrame:
    """candles_<timeframe> of the file, in window order."""
    with duckdb.connect(str(db), read_only=True) as con:
        return con.sql(f"SELECT * FROM candles_{timeframe} ORDER BY timestamp_in").pl()


def test_one_hour_end_to_end(tmp_path):
    """Backfill, views, SQL verify, replay and chart all know 1h from its registry entry alone."""
    path = day_file(tmp_path, DAY, n=20_000)
    db = tmp_path / "b.duckdb"
    run = mdstream("backfill", "--input", str(path), "--timeframes", "15m,1h,4h", "--store-ticks", "--duckdb", str(db))
    assert run.code == 0, run.text
    hours, quarters = _latest(db, "1h"), _latest(db, "15m")
    assert hours.height == 24
    # An hour is its four quarters: first open, last close, extremes, sums (an oracle beside the engine's rollup).
    rolled = (quarters.group_by(pl.col(c.TIMESTAMP_IN).dt.truncate("1h"), maintain_order=True)
              .agg(pl.col(c.OPEN).first(), pl.col(c.HIGH).max(), pl.col(c.LOW).min(), pl.col(c.CLOSE).last(),
                   *[pl.col(s).sum() for s in SUMS]))
    for column in [c.OPEN, c.HIGH, c.LOW, c.CLOSE, c.TRADES]:
        assert hours[column].to_list() == rolled[column].to_list(), column
    for column in SUMS:
        assert hours[column].to_numpy() == pytest.approx(rolled[column].to_numpy(), rel=1e-12), column
    verify = mdstream("verify", "--duckdb", str(db))
    assert verify.code == 0 and "0 mismatches" in verify.out, verify.text

    replayed = tmp_path / "r.duckdb"
    run = mdstream("stream", "--source", "replay", "--input", str(path), "--speed", "0", "--timeframes", "15m,1h",
                   "--quiet", "--duckdb", str(replayed))
    assert run.code == 0, run.text
    streamed = _latest(replayed, "1h")
    assert streamed.height == 24
    for column in [c.OPEN, c.HIGH, c.LOW, c.CLOSE, c.TRADES]:
        assert streamed[column].to_list() == hours[column].to_list(), column
    for column in SUMS:  # float sums may add in another order
        assert streamed[column].to_numpy() == pytest.approx(hours[column].to_numpy(), rel=1e-12), column

    page = tmp_path / "chart.html"
    run = mdstream("chart", "--duckdb", str(db), "--timeframe", "1h", "--output", str(page))
    assert run.code == 0 and "3 series" in run.out, run.text
    assert '"1h"' in page.read_text(encoding="utf-8")
