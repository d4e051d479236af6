"""`query` and `verify`: library functions and their click commands against real DuckDB files."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner

from mdstream.cli.local import commands, query, verify
from mdstream.contract import columns as c
from mdstream.contract import schema
from mdstream.contract.errors import ConfigError, MdstreamError
from mdstream.kernel.candles import candles_from_ticks
from mdstream.ops.query import render, run_query
from mdstream.ops.verify import verify_duckdb
from mdstream.sinks import base
from mdstream.sinks.duckdb import DuckDBSink
from support.recompute import NOW, read_trades

DAY = datetime(2024, 1, 2, tzinfo=timezone.utc)


def synthetic_ticks(symbol: str, n: int = 400) -> pl.DataFrame:
    """n trades spread over five hours of DAY with quiet stretches, deterministic."""
    seconds = [(i * 37) % 18000 for i in range(n) if (i * 37) % 18000 // 600 % 4 != 1]
    frame = pl.DataFrame({
        c.EXCHANGE: "binance-futures", c.SYMBOL: symbol,
        c.TIMESTAMP: [DAY + timedelta(seconds=s, microseconds=i) for i, s in enumerate(seconds)],
        c.ID: [str(i) for i in range(len(seconds))],
        c.SIDE: ["buy" if i % 3 else "sell" for i in range(len(seconds))],
        c.PRICE: [100.0 + (i % 17) * 0.5 for i in range(len(seconds))],
        c.AMOUNT: [0.1 + (i % 5) for i in range(len(seconds))],
    }).with_columns(pl.col(c.TIMESTAMP).alias(c.LOCAL_TIMESTAMP)).sort(c.TIMESTAMP)
    return schema.conform(frame, schema.TICK_SCHEMA)


def backfill(db, ticks: pl.DataFrame, *, store_ticks: bool = True) -> None:
    """Store the engine's candles (and the ticks) of one symbol-day the way the backfill job does."""
    symbol = ticks[c.SYMBOL][0]
    day = ticks[c.TIMESTAMP].min().date().isoformat()
    frames = {base.CANDLES: candles_from_ticks(ticks.lazy(), now=NOW).collect()}
    if store_ticks:
        frames[base.TICKS] = ticks
    sink = DuckDBSink(db)
    sink.write_day(ticks[c.EXCHANGE][0], symbol, day, frames)
    sink.close()


@pytest.fixture()
def db(tmp_path):
    """A DuckDB file with two backfilled symbols and their ticks."""
    path = tmp_path / "m.duckdb"
    backfill(path, synthetic_ticks("BTCUSDT"))
    backfill(path, synthetic_ticks("ETHUSDT", 300))
    return path


def execute(path, sql: str) -> None:
    """Run a write statement on the file (as a corrupting hand would)."""
    with duckdb.connect(str(path)) as con:
        con.execute(sql)


def test_clean_backfill_verifies(db):
    report = verify_duckdb(db)
    assert report.ok and report.series == 12 and report.windows > 1000
    only = verify_duckdb(db, symbols=["ETHUSDT"], from_="2024-01-02", to="2024-01-03")
    assert only.ok and only.series == 6
    assert verify_duckdb(db, from_="2024-01-03").windows == 0
    assert verify_duckdb(db, to="2024-01-02").windows == 0


def test_corruption_is_reported_by_key_and_column(db):
    execute(db, "UPDATE candles SET close = close * 1.001, trades = trades + 1 "
                "WHERE symbol = 'BTCUSDT' AND timeframe = '1m' AND timestamp_in = '2024-01-02 00:05:00+00'")
    execute(db, "DELETE FROM candles WHERE symbol = 'ETHUSDT' AND timeframe = '15m' AND timestamp_in = '2024-01-02 01:00:00+00'")
    execute(db, "UPDATE candles SET volume = volume * (1 + 1e-13) WHERE timeframe = '5m'")  # within 1e-9: fine
    report = verify_duckdb(db)
    assert not report.ok
    problems = report.mismatches.select("problem", c.SYMBOL, c.TIMEFRAME, "column").rows()
    assert problems == [("differs", "BTCUSDT", "1m", "close"), ("differs", "BTCUSDT", "1m", "trades"),
                        ("missing", "ETHUSDT", "15m", None)]
    row = report.mismatches.row(1, named=True)
    assert int(row["actual"]) == int(row["expected"]) + 1
    assert any(line.startswith("differs BTCUSDT") is False and "BTCUSDT 1m 2024-01-02 00:05:00 close" in line
               for line in report.lines())
    # A later revision with the right values repairs the window for readers (and for verify).
    execute(db, "INSERT INTO candles SELECT * REPLACE (revision + 1 AS revision, close / 1.001 AS close, trades - 1 AS trades) "
                "FROM candles WHERE symbol = 'BTCUSDT' AND timeframe = '1m' AND timestamp_in = '2024-01-02 00:05:00+00'")
    assert verify_duckdb(db).mismatches.height == 1


def test_extra_window_and_series_without_ticks(tmp_path):
    path = tmp_path / "m.duckdb"
    backfill(path, synthetic_ticks("BTCUSDT"))
    backfill(path, synthetic_ticks("SOLUSDT", 100), store_ticks=False)
    execute(path, "INSERT INTO candles SELECT * REPLACE (timestamp_in + INTERVAL 7 SECOND AS timestamp_in) FROM candles "
                  "WHERE symbol = 'BTCUSDT' AND timeframe = '15s' AND timestamp_in = '2024-01-02 00:10:00+00'")
    report = verify_duckdb(path)
    assert report.mismatches.filter(pl.col("problem") == "extra").height == 1
    assert report.unverified == [f"binance-futures SOLUSDT {tf}" for tf in ("15m", "15s", "1d", "1m", "4h", "5m")]


def test_real_day_verifies(tmp_path, real_data):
    path = tmp_path / "real.duckdb"
    backfill(path, read_trades(real_data))
    report = verify_duckdb(path)
    assert report.ok and report.windows == 667


def test_verify_command_exit_codes(db):
    runner = CliRunner()
    ok = runner.invoke(verify, ["--duckdb", str(db), "--symbols", "BTCUSDT,ETHUSDT", "--from", "2024-01-02", "--to", "2024-01-03"])
    assert ok.exit_code == 0, ok.output
    assert ok.output.strip().splitlines()[-1].startswith("OK:")
    execute(db, "UPDATE candles SET high = high + 1 WHERE timeframe = '4h' AND symbol = 'ETHUSDT'")
    bad = runner.invoke(verify, ["--duckdb", str(db)])
    assert bad.exit_code == 1
    assert "differs ETHUSDT" not in bad.output and "binance-futures ETHUSDT 4h 2024-01-02 00:00:00 high" in bad.output
    bad_day = runner.invoke(verify, ["--duckdb", str(db), "--from", "yesterday"])
    assert bad_day.exit_code == 1 and "'yesterday' is not a day for --from: expected YYYY-MM-DD" in bad_day.output
    missing = runner.invoke(verify, ["--duckdb", str(db.parent / "nope.duckdb")])
    assert missing.exit_code == 1 and "does not exist" in missing.output
    assert "Example:" in runner.invoke(verify, ["--help"]).output
    assert [cmd.name for cmd in commands] == ["query", "verify"]


def test_run_query_and_errors(db):
    df = run_query(db, "SELECT symbol, count(*) AS n FROM candles_1d GROUP BY symbol ORDER BY symbol")
    assert df.rows() == [("BTCUSDT", 1), ("ETHUSDT", 1)]
    with pytest.raises(MdstreamError, match="candles_2m"):
        run_query(db, "SELECT * FROM candles_2m")
    with pytest.raises(MdstreamError, match="read-only"):
        run_query(db, "DELETE FROM candles")
    with pytest.raises(ConfigError, match="does not exist"):
        run_query(db.parent / "nope.duckdb", "SELECT 1")


def test_render_formats(db, tmp_path):
    df = run_query(db, "SELECT symbol, timestamp_in, close, vwap FROM candles_1m ORDER BY symbol, timestamp_in LIMIT 3")
    render(df, "csv", tmp_path / "a.csv")
    assert pl.read_csv(tmp_path / "a.csv").columns == ["symbol", "timestamp_in", "close", "vwap"]
    render(df, "json", tmp_path / "a.json")
    assert len(json.loads((tmp_path / "a.json").read_text())) == 3
    render(df, "parquet", tmp_path / "a.parquet")
    assert pl.read_parquet(tmp_path / "a.parquet").equals(df)
    render(df, "table", tmp_path / "a.txt")
    assert "BTCUSDT" in (tmp_path / "a.txt").read_text()
    with pytest.raises(ConfigError, match="--output"):
        render(df, "parquet")


def test_query_command(db):
    runner = CliRunner()
    out = runner.invoke(query, ["SELECT timeframe, count(*) AS n FROM candles_latest WHERE symbol = 'ETHUSDT' "
                                "GROUP BY ALL ORDER BY n, timeframe", "--duckdb", str(db), "--format", "csv"])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[:3] == ["timeframe,n", "1d,1", "4h,1"]
    table = runner.invoke(query, ["SELECT * FROM data_quality", "--duckdb", str(db)])
    assert table.exit_code == 0 and "gaps_quiet" in table.output
    broken = runner.invoke(query, ["SELEC 1", "--duckdb", str(db)])
    assert broken.exit_code == 1 and "syntax error" in broken.output.lower()
    assert "Example:" in runner.invoke(query, ["--help"]).output
