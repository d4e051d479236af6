"""Binance USD-M futures trade messages: insurance-fund fills are quarantined, not turned into candles."""

from __future__ import annotations

from datetime import datetime, timezone

import orjson

from mdstream.contract import columns as c
from mdstream.inputs.decode import TRADE_ID, decode_binance, raw_frame, split_market

NOW = datetime(2024, 1, 1, tzinfo=timezone.utc)


def message(trade_id: int, price: str, kind: str | None) -> str:
    data = {"e": "trade", "E": 1679851564490, "T": 1679851564486, "s": "BTCUSDT", "t": trade_id, "p": price,
            "q": "0.014", "m": True}
    if kind is not None:
        data["X"] = kind
    return orjson.dumps({"stream": "btcusdt@trade", "data": data}).decode()


def test_only_order_book_trades_become_ticks_and_the_rest_is_counted():
    raw = raw_frame([message(1, "27785.00", "MARKET"), message(2, "31000.00", "INSURANCE_FUND"),
                     message(3, "27785.10", None)], 0)
    ticks, quarantine, ignored = decode_binance(raw, exchange="binance-futures", source="test", now=NOW)
    assert ignored == {}
    assert quarantine.height == 0 and ticks[TRADE_ID].to_list() == [1, 2, 3]  # ids seen first: no false gap
    market, off_book = split_market(ticks, source="test", now=NOW)
    assert market[c.ID].to_list() == ["1", "3"]
    assert off_book.height == 1
    row = off_book.row(0, named=True)
    assert row[c.Q_FIELD] == "X" and row[c.Q_REASON] == "not an order-book trade (X=INSURANCE_FUND)"
    assert "31000" in row[c.Q_RAW]
