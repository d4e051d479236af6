"""A local HTTP server on 127.0.0.1 answering venues' public instrument-list requests with documented shapes
(Binance COIN-M `/dapi/v1/exchangeInfo`, OKX `/api/v5/public/instruments`), counting requests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

EXCHANGE_INFO = "/dapi/v1/exchangeInfo"
OKX_SWAPS = "/api/v5/public/instruments"


def coinm_symbol(symbol: str, pair: str, contract_size: int, base: str) -> dict:
    """One entry of `symbols` in Binance COIN-M exchangeInfo (fields as documented)."""
    return {
        "symbol": symbol, "pair": pair, "contractType": "PERPETUAL" if symbol.endswith("_PERP") else "CURRENT_QUARTER",
        "deliveryDate": 4133404800000, "onboardDate": 1597042800000, "contractStatus": "TRADING",
        "contractSize": contract_size, "marginAsset": base, "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000", "baseAsset": base, "quoteAsset": "USD", "pricePrecision": 1,
        "quantityPrecision": 0, "baseAssetPrecision": 8, "quotePrecision": 8, "equalQtyPrecision": 4,
        "triggerProtect": "0.0500", "underlyingType": "COIN", "underlyingSubType": [],
        "filters": [{"filterType": "PRICE_FILTER", "minPrice": "1000", "maxPrice": "4520958", "tickSize": "0.1"}],
        "orderTypes": ["LIMIT", "MARKET"], "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }


def exchange_info(*symbols: dict) -> dict:
    """A whole exchangeInfo response."""
    return {"timezone": "UTC", "serverTime": 1723075200000, "rateLimits": [], "exchangeFilters": [],
            "symbols": list(symbols)}


def okx_instrument(inst_id: str, ct_type: str, ct_val: str, ct_val_ccy: str) -> dict:
    """One entry of `data` in OKX /api/v5/public/instruments."""
    uly = "-".join(inst_id.split("-")[:2])
    return {"instType": "SWAP", "instId": inst_id, "uly": uly, "instFamily": uly, "ctType": ct_type, "ctVal": ct_val,
            "ctValCcy": ct_val_ccy, "ctMult": "1", "settleCcy": uly.split("-")[0] if ct_type == "inverse" else "USDT",
            "tickSz": "0.1", "lotSz": "1", "minSz": "1", "state": "live", "baseCcy": "", "quoteCcy": ""}


class InstrumentServer:
    """Bodies by path; `down` answers 503; `requests` counts what was asked."""

    def __init__(self) -> None:
        self.bodies: dict[str, dict] = {}
        self.requests: list[str] = []
        self.down = False
        self.httpd: ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        """Full URL of `path` on this server."""
        assert self.httpd is not None
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def handler(self):
        """The request handler class bound to this state."""
        state = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server naming)
                path = self.path.split("?", 1)[0]
                state.requests.append(self.path)
                body = state.bodies.get(path)
                if state.down or body is None:
                    self.send_response(503 if state.down else 404)
                    self.end_headers()
                    return
                payload = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):  # quiet test output
                return

        return Handler


@pytest.fixture
def instrument_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[InstrumentServer]:
    """A running InstrumentServer on an ephemeral 127.0.0.1 port (proxies bypassed for it)."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    state = InstrumentServer()
    state.httpd = ThreadingHTTPServer(("127.0.0.1", 0), state.handler())
    thread = threading.Thread(target=state.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.httpd.shutdown()
        state.httpd.server_close()
