"""Instrument metadata: the built-in table, overrides, and venue lists fetched from a local server and cached."""

from __future__ import annotations

import json

import pytest

from mdstream.contract.errors import ConfigError
from mdstream.contract.instruments import (
    BUILTIN,
    DEFAULT,
    INVERSE,
    LINEAR,
    OVERRIDE,
    QUANTO,
    SPOT,
    UNKNOWN,
    VENUE,
    Instrument,
    builtin,
    fallback,
    from_frame,
    parse_override,
    to_frame,
)
from mdstream.inputs.instruments import CACHE_TTL_S, ENV_ENDPOINT, InstrumentBook
from support.instrument_http import (  # noqa: F401  (fixture)
    EXCHANGE_INFO,
    OKX_SWAPS,
    coinm_symbol,
    exchange_info,
    okx_instrument,
)


@pytest.mark.parametrize("exchange, symbol, kind, size, currency", [
    ("binance-delivery", "BTCUSD_PERP", INVERSE, 100.0, "USD"),
    ("binance-delivery", "BTCUSD_240927", INVERSE, 100.0, "USD"),
    ("binance-delivery", "ETHUSD_PERP", INVERSE, 10.0, "USD"),
    ("binance-delivery", "1000SHIBUSD_PERP", INVERSE, 10.0, "USD"),
    ("bitmex", "XBTUSD", INVERSE, 1.0, "USD"),
    ("bitmex", "XBTZ24", INVERSE, 1.0, "USD"),
    ("bitmex", "ETHUSD", QUANTO, 0.000001, "XBT"),
    ("bitmex", "ETHUSDM20", QUANTO, 0.000001, "XBT"),
    ("deribit", "BTC-PERPETUAL", INVERSE, 1.0, "USD"),   # Deribit reports inverse amounts in USD
    ("deribit", "ETH-27DEC24", INVERSE, 1.0, "USD"),
    ("deribit", "SOL_USDC-PERPETUAL", LINEAR, 1.0, "SOL"),
    ("okex-swap", "BTC-USD-SWAP", INVERSE, 100.0, "USD"),
    ("okex-swap", "ETH-USD-SWAP", INVERSE, 10.0, "USD"),
    ("okex-futures", "BTC-USD-240927", INVERSE, 100.0, "USD"),
    ("okex-swap", "BTC-USDT-SWAP", LINEAR, 0.01, "BTC"),
    ("okex-swap", "ETH-USDT-SWAP", LINEAR, 0.1, "ETH"),
    ("bybit", "BTCUSD", INVERSE, 1.0, "USD"),
    ("bybit", "ETHUSDZ24", INVERSE, 1.0, "USD"),
    ("bybit", "BTCUSDT", LINEAR, 1.0, "BTC"),
    ("binance-futures", "BTCUSDT", LINEAR, 1.0, "BTC"),
])
def test_builtin_table(exchange, symbol, kind, size, currency):
    found = builtin(exchange, symbol)
    assert (found.kind, found.contract_size, found.contract_currency, found.source) == (kind, size, currency, BUILTIN)


def test_nothing_is_guessed():
    assert builtin("okex-swap", "SOL-USDT-SWAP") is None  # linear contract size varies by coin: not in the table
    assert builtin("bitmex", "XBTUSDT") is None
    assert fallback("okex-swap", "SOL-USDT-SWAP").source == UNKNOWN
    assert fallback("binance", "BTCUSDT") == Instrument("binance", "BTCUSDT", SPOT, 1.0, source=DEFAULT)


def test_overrides_parse_and_reject_bad_specs():
    assert parse_override("bitmex:XBTUSD=inverse:1:USD") == Instrument("bitmex", "XBTUSD", INVERSE, 1.0, "USD", source=OVERRIDE)
    assert parse_override("SOL-USDT-SWAP=linear:1", "okex-swap").contract_size == 1.0
    assert parse_override("okex-swap:SOL-USDT-SWAP=linear:0.01:SOL").exchange == "okex-swap"
    for bad in ("XBTUSD", "bitmex:XBTUSD=inverse", "bitmex:XBTUSD=inverted:1", "bitmex:XBTUSD=inverse:abc",
                "bitmex:XBTUSD=inverse:0", "XBTUSD=inverse:1"):
        with pytest.raises(ConfigError):
            parse_override(bad)


def test_frame_round_trip():
    items = [builtin("bitmex", "ETHUSD"), fallback("binance", "BTCUSDT")]
    assert from_frame(to_frame(items)) == items


def test_book_override_first_and_unknown_reported_once(tmp_path):
    book = InstrumentBook([parse_override("binance-delivery:BTCUSD_PERP=inverse:50:USD")], cache_dir=tmp_path, fetch=False)
    assert book.resolve("binance-delivery", "BTCUSD_PERP").contract_size == 50.0
    assert book.resolve("binance-delivery", "ETHUSD_PERP").source == BUILTIN
    for _ in range(3):
        assert book.resolve("okex-swap", "SOL-USDT-SWAP").kind == LINEAR
    assert len(book.warnings) == 1 and "SOL-USDT-SWAP" in book.warnings[0] and "--instrument" in book.warnings[0]
    assert book.resolve("binance", "ETHUSDT").source == DEFAULT and len(book.warnings) == 1


def test_venue_list_fetched_cached_and_refreshed(tmp_path, instrument_server, monkeypatch):
    instrument_server.bodies[EXCHANGE_INFO] = exchange_info(
        coinm_symbol("BTCUSD_PERP", "BTCUSD", 100, "BTC"), coinm_symbol("ADAUSD_PERP", "ADAUSD", 10, "ADA"),
        coinm_symbol("NEWUSD_250926", "NEWUSD", 25, "NEW"),  # a size no built-in rule gives
    )
    monkeypatch.setenv(ENV_ENDPOINT, f"binance-delivery={instrument_server.url(EXCHANGE_INFO)}")
    clock = [1_000_000.0]
    book = InstrumentBook(cache_dir=tmp_path, fetch=True, now=lambda: clock[0])
    new = book.resolve("binance-delivery", "NEWUSD_250926")
    assert (new.kind, new.contract_size, new.contract_currency, new.base_asset, new.source) == (INVERSE, 25.0, "USD", "NEW", VENUE)
    assert book.resolve("binance-delivery", "BTCUSD_PERP").source == VENUE
    assert book.resolve("binance-delivery", "DOTUSD_PERP").source == BUILTIN  # not listed: the table
    assert len(instrument_server.requests) == 1 and not book.warnings
    cached = json.loads((tmp_path / "instruments" / "binance-delivery.json").read_text())
    assert {row["symbol"] for row in cached["instruments"]} == {"BTCUSD_PERP", "ADAUSD_PERP", "NEWUSD_250926"}

    # A fresh cache answers the next run without asking (even with fetching allowed) ...
    clock[0] += CACHE_TTL_S - 1
    assert InstrumentBook(cache_dir=tmp_path, fetch=True, now=lambda: clock[0]).resolve(
        "binance-delivery", "NEWUSD_250926").contract_size == 25.0
    assert len(instrument_server.requests) == 1
    # ... a stale one is refreshed; while the venue is down the stale list is still used, with a warning.
    clock[0] += 2
    instrument_server.down = True
    book = InstrumentBook(cache_dir=tmp_path, fetch=True, now=lambda: clock[0])
    assert book.resolve("binance-delivery", "NEWUSD_250926").contract_size == 25.0
    assert len(instrument_server.requests) == 2 and "unavailable" in book.warnings[0]
    instrument_server.down = False
    instrument_server.bodies[EXCHANGE_INFO] = exchange_info(coinm_symbol("NEWUSD_250926", "NEWUSD", 30, "NEW"))
    assert InstrumentBook(cache_dir=tmp_path, fetch=True, now=lambda: clock[0]).resolve(
        "binance-delivery", "NEWUSD_250926").contract_size == 30.0


def test_offline_uses_the_table_without_asking(tmp_path, instrument_server, monkeypatch):
    instrument_server.bodies[EXCHANGE_INFO] = exchange_info(coinm_symbol("BTCUSD_PERP", "BTCUSD", 100, "BTC"))
    monkeypatch.setenv(ENV_ENDPOINT, f"binance-delivery={instrument_server.url(EXCHANGE_INFO)}")
    book = InstrumentBook(cache_dir=tmp_path)  # MDSTREAM_INSTRUMENTS_FETCH=off in every test
    assert book.resolve("binance-delivery", "BTCUSD_PERP").source == BUILTIN
    assert instrument_server.requests == []


def test_okx_list_gives_linear_contract_sizes(tmp_path, instrument_server, monkeypatch):
    instrument_server.bodies[OKX_SWAPS] = {"code": "0", "msg": "", "data": [
        okx_instrument("SOL-USDT-SWAP", "linear", "1", "SOL"), okx_instrument("BTC-USD-SWAP", "inverse", "100", "USD"),
    ]}
    monkeypatch.setenv(ENV_ENDPOINT, f"okex-swap={instrument_server.url(OKX_SWAPS)}?instType=SWAP")
    book = InstrumentBook(cache_dir=tmp_path, fetch=True)
    sol = book.resolve("okex-swap", "SOL-USDT-SWAP")
    assert (sol.kind, sol.contract_size, sol.contract_currency, sol.base_asset, sol.source) == (LINEAR, 1.0, "SOL", "SOL", VENUE)
    assert book.resolve("okex-swap", "BTC-USD-SWAP").kind == INVERSE
    assert not book.warnings and instrument_server.requests == ["/api/v5/public/instruments?instType=SWAP"]


def test_unreadable_cache_is_ignored(tmp_path):
    path = tmp_path / "instruments" / "binance-delivery.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    book = InstrumentBook(cache_dir=tmp_path, fetch=False)
    assert book.resolve("binance-delivery", "BTCUSD_PERP").source == BUILTIN
