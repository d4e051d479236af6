"""The built-in instrument table: venues' inverse, quanto and contract-sized linear instruments as Tardis names them.

Each rule is (exchange, symbol regex matched whole, fields); "{0}", "{1}" are the regex groups; `sizes` picks the
contract size by base asset ("*" for every other). Sources, per venue, for what one unit of the trade amount is:
- binance-delivery (Binance COIN-M): amount in contracts; BTC contracts are 100 USD, every other 10 USD
  (exchangeInfo `contractSize`). binance-futures (USD-M): amount in base units.
- bitmex: amount in contracts. XBTUSD and XBT futures: inverse, 1 USD. ETHUSD and ETH/USD futures: quanto with
  a Bitcoin multiplier of 0.000001 XBT (100 satoshi) per 1 USD of price (BitMEX's ETHUSD series guide).
- deribit: BTC and ETH perpetuals and futures are inverse and their trades report the amount in USD (contracts
  of 10 USD for BTC, 1 USD for ETH), so one unit of amount is 1 USD; USDC/USDT-margined ones are linear, amount
  in base units.
- okex-swap / okex-futures (OKX): amount in contracts; -USD- instruments are inverse, 100 USD for BTC, 10 USD for
  others; BTC-USDT and ETH-USDT linear contracts are 0.01 BTC and 0.1 ETH.
- bybit: inverse BTCUSD-style perpetuals and futures are 1 USD contracts; USDT and USDC (PERP) linear ones report
  base units.
"""

from __future__ import annotations

_COIN_M = {"kind": "inverse", "sizes": {"BTC": 100.0, "*": 10.0}, "contract_currency": "USD", "base_asset": "{0}",
           "quote_asset": "USD"}
_BITMEX_INVERSE = {"kind": "inverse", "contract_size": 1.0, "contract_currency": "USD", "base_asset": "BTC",
                   "quote_asset": "USD"}
_BITMEX_QUANTO = {"kind": "quanto", "contract_size": 0.000001, "contract_currency": "XBT", "base_asset": "ETH",
                  "quote_asset": "USD"}
_DERIBIT_INVERSE = {"kind": "inverse", "contract_size": 1.0, "contract_currency": "USD", "base_asset": "{0}",
                    "quote_asset": "USD"}
_DERIBIT_LINEAR = {"kind": "linear", "contract_size": 1.0, "contract_currency": "{0}", "base_asset": "{0}",
                   "quote_asset": "{1}"}
_OKX_INVERSE = {"kind": "inverse", "sizes": {"BTC": 100.0, "*": 10.0}, "contract_currency": "USD",
                "base_asset": "{0}", "quote_asset": "USD"}
_OKX_LINEAR = {"kind": "linear", "sizes": {"BTC": 0.01, "ETH": 0.1}, "contract_currency": "{0}", "base_asset": "{0}",
               "quote_asset": "USDT"}
_BYBIT_INVERSE = {"kind": "inverse", "contract_size": 1.0, "contract_currency": "USD", "base_asset": "{0}",
                  "quote_asset": "USD"}
_MONTH = "[FGHJKMNQUVXZ]"  # futures month codes
_DERIBIT_EXPIRY = r"\d{1,2}[A-Z]{3}\d{2}"  # 27DEC24

RULES: list[tuple[str, str, dict]] = [
    ("binance-delivery", r"([A-Z0-9]+?)USD_(?:PERP|\d{6})", _COIN_M),
    ("binance-futures", r"([A-Z0-9]+?)(USDT|USDC|BUSD)(?:_\d{6})?",
     {"kind": "linear", "contract_size": 1.0, "contract_currency": "{0}", "base_asset": "{0}", "quote_asset": "{1}"}),
    ("bitmex", r"XBTUSD", _BITMEX_INVERSE),
    ("bitmex", rf"XBT{_MONTH}\d{{2}}", _BITMEX_INVERSE),
    ("bitmex", r"ETHUSD", _BITMEX_QUANTO),
    ("bitmex", rf"ETHUSD{_MONTH}\d{{2}}", _BITMEX_QUANTO),
    ("deribit", r"(BTC|ETH)-PERPETUAL", _DERIBIT_INVERSE),
    ("deribit", rf"(BTC|ETH)-{_DERIBIT_EXPIRY}", _DERIBIT_INVERSE),
    ("deribit", r"([A-Z0-9]+)_(USDC|USDT)-PERPETUAL", _DERIBIT_LINEAR),
    ("deribit", rf"([A-Z0-9]+)_(USDC|USDT)-{_DERIBIT_EXPIRY}", _DERIBIT_LINEAR),
    ("okex-swap", r"([A-Z0-9]+)-USD-SWAP", _OKX_INVERSE),
    ("okex-swap", r"(BTC|ETH)-USDT-SWAP", _OKX_LINEAR),
    ("okex-futures", r"([A-Z0-9]+)-USD-\d{6}", _OKX_INVERSE),
    ("okex-futures", r"(BTC|ETH)-USDT-\d{6}", _OKX_LINEAR),
    ("bybit", r"([A-Z0-9]+?)USD", _BYBIT_INVERSE),
    ("bybit", rf"([A-Z0-9]+?)USD{_MONTH}\d{{2}}", _BYBIT_INVERSE),
    ("bybit", r"([A-Z0-9]+?)USDT",
     {"kind": "linear", "contract_size": 1.0, "contract_currency": "{0}", "base_asset": "{0}", "quote_asset": "USDT"}),
    ("bybit", r"([A-Z0-9]+?)PERP",
     {"kind": "linear", "contract_size": 1.0, "contract_currency": "{0}", "base_asset": "{0}", "quote_asset": "USDC"}),
    # Venues whose every trade amount is in base units.
    ("dydx", r"([A-Z0-9]+)-(USD)", {"kind": "linear", "contract_size": 1.0, "base_asset": "{0}", "quote_asset": "{1}"}),
    ("dydx-v4", r"([A-Z0-9]+)-(USD)", {"kind": "linear", "contract_size": 1.0, "base_asset": "{0}", "quote_asset": "{1}"}),
    ("hyperliquid", r"([A-Z0-9]+)", {"kind": "linear", "contract_size": 1.0, "base_asset": "{0}", "quote_asset": "USD"}),
]

# Tardis exchange ids of derivative venues: a symbol of theirs no rule covers is reported as unknown.
DERIVATIVE_VENUES = frozenset({
    "binance-delivery", "binance-futures", "binance-options", "bitmex", "deribit", "okex-futures", "okex-swap",
    "okex-options", "huobi-dm", "huobi-dm-swap", "huobi-dm-linear-swap", "huobi-dm-options", "bybit",
    "bybit-options", "bitfinex-derivatives", "cryptofacilities", "kraken-futures", "phemex", "delta",
    "gate-io-futures", "coinflex", "dydx", "dydx-v4", "hyperliquid", "kucoin-futures", "bitget-futures",
    "mexc-futures", "coinbase-international", "ftx",
})
