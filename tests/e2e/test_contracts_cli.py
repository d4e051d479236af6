"""Derivative contracts through the real CLI: COIN-M, BitMEX inverse and quanto backfills, a COIN-M replay,
unknown instruments and overrides, and `verify` knowing the volume rule."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from mdstream.cli import main
from mdstream.contract import columns as c
from mdstream.inputs.sample import write_csv_gz
from mdstream.sinks.duckdb_schema import connect
from support.contracts import assert_matches_decimal, coinm_recording, contract_trades, decimal_candles
from support.instrument_http import EXCHANGE_INFO, coinm_symbol, exchange_info

DAYS = (date(2024, 8, 8), date(2024, 8, 9))


def run(*args: str, env: dict | None = None, code: int = 0) -> str:
    """`mdstream <args>` in-process; asserts the exit code and returns the output."""
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def stored(db: Path, timeframe: str, symbol: str) -> pl.DataFrame:
    """candles_latest of one series and timeframe, oldest first."""
    con = connect(db, read_only=True)
    try:
        return pl.from_arrow(con.sql(
            "SELECT * FROM candles_latest WHERE timeframe = $tf AND symbol = $symbol ORDER BY timestamp_in",
            params={"tf": timeframe, "symbol": symbol},
        ).to_arrow_table())
    finally:
        con.close()


def coinm_days(symbol: str = "BTCUSD_PERP", price: float = 61_000.0) -> list[pl.DataFrame]:
    """Two consecutive Tardis days of a COIN-M perpetual, ids continuing over midnight."""
    return [contract_trades(4_000, day=day, exchange="binance-delivery", symbol=symbol, price=price, tick=0.1,
                            seed=20 + i, first_id=900_000_000 + 4_000 * i) for i, day in enumerate(DAYS)]


def check_against_decimal(db: Path, frames: list[pl.DataFrame], symbol: str, kind: str, size: float) -> None:
    """1m and 1d candles of every day equal the Decimal computation."""
    whole = pl.concat(frames)
    for tf in ("1m", "1d"):
        assert assert_matches_decimal(stored(db, tf, symbol), decimal_candles(whole, tf, kind, size)) >= len(frames)


def test_coinm_tardis_download_across_midnight_matches_decimal_and_verifies(tmp_path, tardis_server, instrument_server):
    frames = coinm_days()
    for day, frame in zip(DAYS, frames):
        tardis_server.add("binance-delivery", "BTCUSD_PERP", day, gzip.compress(frame.write_csv().encode()))
    instrument_server.bodies[EXCHANGE_INFO] = exchange_info(coinm_symbol("BTCUSD_PERP", "BTCUSD", 100, "BTC"))
    env = {"TARDIS_API_KEY": "test-key", "MDSTREAM_TARDIS_ENDPOINT": tardis_server.endpoint, "MDSTREAM_INSTRUMENTS_FETCH": "on",
           "MDSTREAM_INSTRUMENTS_ENDPOINT": f"binance-delivery={instrument_server.url(EXCHANGE_INFO)}"}
    db = tmp_path / "coinm.duckdb"
    out = run("backfill", "--exchange", "binance-delivery", "--symbols", "BTCUSD_PERP", "--from", "2024-08-08",
              "--to", "2024-08-10", "--cache-dir", str(tmp_path / "cache"), "--store-ticks", "--duckdb", str(db),
              "--quiet", env=env)
    assert "binance-delivery BTCUSD_PERP inverse, 1 contract = 100 USD (venue)" in out
    assert (tmp_path / "cache" / "instruments" / "binance-delivery.json").is_file()
    check_against_decimal(db, frames, "BTCUSD_PERP", "inverse", 100.0)
    day = stored(db, "1d", "BTCUSD_PERP").row(0, named=True)
    # a trader's numbers: contracts, BTC, USD; vwap a price inside the day's range
    assert day[c.QUOTE_VOLUME] == day[c.VOLUME] * 100
    assert day[c.LOW] < day[c.VWAP] < day[c.HIGH] and 0 < day[c.BASE_VOLUME] < day[c.VOLUME]
    minutes = stored(db, "1m", "BTCUSD_PERP")
    traded = minutes.filter(pl.col(c.TRADES) > 0)
    # inside [low, high] up to the rounding of sum(amount / price) (a one-price minute is p * (1 +- 1e-16))
    assert ((traded[c.VWAP] >= traded[c.LOW] * (1 - 1e-12)) & (traded[c.VWAP] <= traded[c.HIGH] * (1 + 1e-12))).all()
    assert (minutes["vwap_day"].drop_nulls() > 1_000).all()  # a price, not contracts per price
    verdict = run("verify", "--duckdb", str(db), "--from", "2024-08-08", "--to", "2024-08-10")
    assert verdict.splitlines()[-1].startswith("OK:")


def test_bitmex_real_sample_inverse_one_usd_contracts(real_data, tmp_path):
    sample = real_data / "tardis" / "sample_bitmex_trades_XBTUSD.csv"
    db = tmp_path / "bitmex.duckdb"
    out = run("backfill", "--input", str(sample), "--store-ticks", "--duckdb", str(db), "--quiet")
    assert "bitmex XBTUSD inverse, 1 contract = 1 USD (builtin)" in out
    frame = pl.read_csv(sample, schema_overrides={c.ID: pl.String})
    row = stored(db, "1m", "XBTUSD").filter(pl.col(c.TRADES) > 0).row(0, named=True)
    assert (row[c.TRADES], row[c.VOLUME], row[c.SELL_VOLUME], row[c.QUOTE_VOLUME]) == (10, 2161.0, 2161.0, 2161.0)
    assert row[c.BASE_VOLUME] == pytest.approx(2161 / 8531.5, rel=1e-15)  # BitMEX's homeNotional, in XBT
    assert row[c.VWAP] == pytest.approx(8531.5, rel=1e-15)
    assert_matches_decimal(stored(db, "1m", "XBTUSD"), decimal_candles(frame, "1m", "inverse", 1.0))
    assert run("verify", "--duckdb", str(db)).splitlines()[-1].startswith("OK:")


def test_bitmex_quanto_notional_is_in_xbt_and_vwap_is_a_price(tmp_path):
    frame = contract_trades(3_000, day=DAYS[0], exchange="bitmex", symbol="ETHUSD", price=2_600.0, tick=0.05, seed=8)
    path = write_csv_gz(frame, tmp_path / "bitmex_trades_2024-08-08_ETHUSD.csv.gz")
    db = tmp_path / "quanto.duckdb"
    out = run("backfill", "--input", str(path), "--store-ticks", "--duckdb", str(db), "--quiet")
    assert "bitmex ETHUSD quanto, multiplier 1e-06 XBT per 1.0 of price (builtin)" in out
    check_against_decimal(db, [frame], "ETHUSD", "quanto", 0.000001)
    day = stored(db, "1d", "ETHUSD").row(0, named=True)
    xbt_value = (frame[c.PRICE] * frame[c.AMOUNT]).sum() * 0.000001
    assert day[c.QUOTE_VOLUME] == pytest.approx(xbt_value, rel=1e-12)
    assert day[c.VWAP] == pytest.approx((frame[c.PRICE] * frame[c.AMOUNT]).sum() / frame[c.AMOUNT].sum(), rel=1e-12)
    assert run("verify", "--duckdb", str(db)).splitlines()[-1].startswith("OK:")


def test_unknown_derivative_is_reported_and_an_override_fixes_it(tmp_path):
    frame = contract_trades(2_000, day=DAYS[0], exchange="okex-swap", symbol="SOL-USDT-SWAP", price=150.0, tick=0.01, seed=4)
    path = write_csv_gz(frame, tmp_path / "okex-swap_trades_2024-08-08_SOL-USDT-SWAP.csv.gz")
    guessed, fixed = tmp_path / "guessed.duckdb", tmp_path / "fixed.duckdb"
    out = run("backfill", "--input", str(path), "--store-ticks", "--duckdb", str(guessed), "--quiet")
    assert out.count("unknown derivative instrument") == 1 and "--instrument okex-swap:SOL-USDT-SWAP=" in out
    unknown = stored(guessed, "1d", "SOL-USDT-SWAP").row(0, named=True)
    assert unknown[c.BASE_VOLUME] == unknown[c.VOLUME]  # computed as linear, size 1 (and said so)

    spec = "okex-swap:SOL-USDT-SWAP=linear:1:SOL"
    out = run("backfill", "--input", str(path), "--store-ticks", "--duckdb", str(fixed), "--quiet", "--instrument",
              spec.replace("linear:1:", "linear:0.01:"))
    assert "unknown derivative" not in out and "1 unit of amount = 0.01 SOL (override)" in out
    check_against_decimal(fixed, [frame], "SOL-USDT-SWAP", "linear", 0.01)
    # verify resolves instruments like a run: without the run's override it reports the difference
    mismatch = run("verify", "--duckdb", str(fixed), code=1)
    assert "base_volume" in mismatch and "quote_volume" in mismatch
    ok = run("verify", "--duckdb", str(fixed), "--instrument", spec.replace("linear:1:", "linear:0.01:"))
    assert ok.splitlines()[-1].startswith("OK:")


def test_coinm_websocket_recording_replays_with_contract_volumes(tmp_path):
    frames = coinm_days("ETHUSD_PERP", 2_600.0)
    frames = [f.with_columns(pl.col(c.PRICE).round(2)) for f in frames]
    recording = coinm_recording(pl.concat(frames), tmp_path / "delivery_ethusd_perp_20240808.gz")
    db = tmp_path / "replay.duckdb"
    run("stream", "--source", "replay", "--input", str(recording), "--exchange", "binance-delivery", "--speed", "0",
        "--timeframes", "1m,1d", "--duckdb", str(db), "--quiet")
    minutes = stored(db, "1m", "ETHUSD_PERP")
    assert minutes[c.EXCHANGE].unique().to_list() == ["binance-delivery"]
    # The recording has the venue's millisecond times; the Decimal oracle reads the same trades.
    whole = pl.concat(frames).with_columns(pl.col(c.TIMESTAMP) // 1000 * 1000)
    assert assert_matches_decimal(minutes, decimal_candles(whole, "1m", "inverse", 10.0)) > 1_000
    days = stored(db, "1d", "ETHUSD_PERP")
    assert days[c.TIMESTAMP_IN].dt.date().to_list() == list(DAYS)
    assert_matches_decimal(days, decimal_candles(whole, "1d", "inverse", 10.0))


def test_instrument_option_is_checked_at_the_edge(tmp_path):
    out = run("backfill", "--input", str(tmp_path), "--instrument", "XBTUSD=inverse", code=2)  # --input must be a file
    assert "Error" in out
    frame = contract_trades(10, day=DAYS[0], exchange="bitmex", symbol="XBTUSD", price=9_000.0, tick=0.5, seed=1)
    path = write_csv_gz(frame, tmp_path / "bitmex.csv.gz")
    out = run("backfill", "--input", str(path), "--instrument", "XBTUSD=inverse:1", "--duckdb", str(tmp_path / "x.duckdb"),
              code=1)
    assert "name the exchange" in out
