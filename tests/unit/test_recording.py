"""Recorded WebSocket files: receive-time units told by magnitude, every line accounted for, COIN-M labels."""

from __future__ import annotations

import gzip
from datetime import datetime, timezone

import orjson

from mdstream.contract import columns as c
from mdstream.inputs.recording import read_ws_recording
from support.damage import trade_message

NOW = datetime(2024, 8, 9, tzinfo=timezone.utc)
MS = 1_723_161_255_208


def write(path, lines: list[str]) -> None:
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(lines) + "\n")


def test_receive_stamps_in_any_unit_give_the_same_receive_time(tmp_path):
    recv_us = 1_723_161_254_087_891
    stamps = [str(recv_us * 1000), str(recv_us), str(recv_us // 1000), f"{recv_us / 1e6:.6f}"]  # ns, us, ms, s
    trades = [orjson.dumps(trade_message("BTCUSDT", i, 61000.0, "0.5", MS)).decode() for i in range(4)]
    path = tmp_path / "spot_btcusdt.gz"
    write(path, [f"{stamp} {trade}" for stamp, trade in zip(stamps, trades)])
    rec = read_ws_recording(path, now=NOW)
    local = rec.ticks.get_column(c.LOCAL_TIMESTAMP).dt.epoch("us").to_list()
    assert local[0] == local[1] == recv_us  # 16 digits are microseconds, not nanoseconds
    assert local[2] == recv_us // 1000 * 1000 and abs(local[3] - recv_us) <= 1


def test_every_line_is_a_trade_a_quarantine_row_or_a_counted_message(tmp_path):
    trade = orjson.dumps(trade_message("BTCUSDT", 1, 61000.0, "0.5", MS)).decode()
    lines = [f"1723161254087891268 {trade}", "1723161254087891269 {broken", "garbage",
             '1723161254087891270 {"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT"}}', "", "   "]
    path = tmp_path / "spot.gz"
    write(path, lines)
    rec = read_ws_recording(path, now=NOW)
    assert rec.received == 4 and rec.ticks.height == 1 and rec.ignored == {"bookTicker": 1}
    assert rec.quarantine[c.Q_LINE].to_list() == [2, 3]
    assert rec.received == rec.ticks.height + rec.quarantine.height + sum(rec.ignored.values())


def test_coin_m_recordings_are_labelled_binance_delivery(tmp_path):
    coin_m = [orjson.dumps(trade_message("BTCUSD_PERP", i, 59000.0, "12", MS, futures=True)).decode() for i in range(3)]
    usd_m = [orjson.dumps(trade_message("BTCUSDT", i, 59000.0, "0.1", MS, futures=True)).decode() for i in range(3)]
    for name, lines, label in [("btcusd_perp.gz", coin_m, "binance-delivery"), ("trades.gz", usd_m, "binance-futures"),
                               ("futures_btcusd_perp.gz", coin_m, "binance-delivery")]:
        path = tmp_path / name
        write(path, [f"1723161254087891268 {line}" for line in lines])
        ticks = read_ws_recording(path, now=NOW).ticks
        assert ticks.get_column(c.EXCHANGE).unique().to_list() == [label], name
        assert ticks.get_column(c.AMOUNT).to_list()[0] in (12.0, 0.1)  # the venue's own amounts (COIN-M: contracts)
    assert read_ws_recording(tmp_path / "trades.gz", exchange="x", now=NOW).ticks[c.EXCHANGE].unique().to_list() == ["x"]
