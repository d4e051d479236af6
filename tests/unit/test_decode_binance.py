"""Binance decoding by parsing: one reading of every field, every message a tick, a quarantine row or a counted
non-trade message."""

from __future__ import annotations

from datetime import datetime, timezone

import orjson

from mdstream.contract import columns as c
from mdstream.inputs.decode import decode_binance, raw_frame
from support.damage import trade_message

NOW = datetime(2024, 8, 9, tzinfo=timezone.utc)
MS = 1_723_161_255_208


def decode(messages: list[str], symbols=("BTCUSDT",)):
    return decode_binance(raw_frame(messages, 0), exchange="binance", source="test", now=NOW, symbols=symbols)


def test_valid_json_with_spaces_is_a_trade():
    spaced = '{ "stream" : "btcusdt@trade" ,\n "data" : { "e" : "trade", "E" : 1, "s" : "BTCUSDT", "t" : 7, ' \
             f'"p" : "61000.5", "q" : "0.25", "T" : {MS}, "m" : false }} }}'
    out = decode([spaced])
    assert out.ticks.height == 1 and out.quarantine.height == 0
    row = out.ticks.row(0, named=True)
    assert (row[c.ID], row[c.PRICE], row[c.AMOUNT], row[c.SIDE]) == ("7", 61000.5, 0.25, c.SIDE_BUY)
    assert row[c.TIMESTAMP] == datetime.fromtimestamp(MS / 1000, timezone.utc)


def test_a_duplicated_key_is_read_the_same_way_by_the_checks_and_the_ticks():
    good = orjson.dumps(trade_message("BTCUSDT", 1, 61000.0, "0.5", MS)).decode()
    # the first value is the one read, for the check and for the tick alike
    first_fine = good[:-2] + ',"p":"1e308"}}'
    first_bad = good.replace('"p":"61000.00"', '"p":"1e308"')[:-2] + ',"p":"61000.00"}}'
    out = decode([first_fine, first_bad])
    assert out.ticks[c.PRICE].to_list() == [61000.0]
    assert out.quarantine[c.Q_FIELD].to_list() == ["p"] and out.quarantine[c.Q_RAW][0] == first_bad


def test_symbols_outside_the_subscription_or_absurd_never_become_ticks():
    def with_symbol(symbol: str) -> str:
        return orjson.dumps(trade_message(symbol, 1, 1.0, "1", MS)).decode()

    out = decode([with_symbol(s) for s in ("ETHUSDT", "BTC\U0001f680", "BTC\nUSDT", "B" * 10_000)])
    assert out.ticks.height == 0
    assert out.quarantine[c.Q_REASON].to_list() == ["symbol not subscribed"] * 4
    # without a subscription (a recording), a symbol must at least look like one
    out = decode([with_symbol(s) for s in ("ETHUSDT", "BTC\U0001f680", "BTC\nUSDT", "B" * 10_000)], symbols=None)
    assert out.ticks[c.SYMBOL].to_list() == ["ETHUSDT"]
    assert out.quarantine[c.Q_REASON].to_list() == ["symbol is not a valid exchange symbol"] * 3


def test_absurd_numbers_and_times_are_quarantined_with_the_field_never_an_overflow():
    base = trade_message("BTCUSDT", 1, 61000.0, "0.5", MS)
    cases = {"p": ["1e308", "NaN", "inf", "-1", "0"], "q": ["1e308", "nan", "-0.5"],
             "T": [MS // 1000, MS * 1000, MS * 1_000_000, 4_102_444_800_001, -MS, 2**63 - 1]}
    messages, fields = [], []
    for key, values in cases.items():
        for value in values:
            message = orjson.loads(orjson.dumps(base))
            message["data"][key] = value
            messages.append(orjson.dumps(message).decode())
            fields.append(key)
    out = decode(messages)
    assert out.ticks.height == 0 and out.quarantine[c.Q_FIELD].to_list() == fields


def test_non_trade_messages_are_counted_by_type_and_unknown_ones_quarantined():
    trade = orjson.dumps(trade_message("BTCUSDT", 1, 61000.0, "0.5", MS)).decode()
    out = decode([
        trade,
        '{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"1","B":"1","a":"2","A":"1"}}',
        '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","b":[["1","2"]],"a":[]}}',
        '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":5,"p":"1","q":"1"}}',
        '{"result":null,"id":1}',
        '{"lastUpdateId":5,"bids":[["1","2"]],"asks":[]}',
        '{"code":2,"msg":"Invalid request"}',
        '{"hello":"world"}',
    ])
    assert out.ticks.height == 1
    assert out.ignored == {"bookTicker": 1, "depthUpdate": 1, "aggTrade": 1, "reply": 1, "snapshot": 1, "error": 1}
    assert out.quarantine[c.Q_REASON].to_list() == ["unrecognised message"]
