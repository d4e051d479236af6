"""A local HTTP server speaking the Tardis datasets URL layout, for download tests.

Serves registered .csv.gz bodies at `/v1/{exchange}/trades/{YYYY/MM/DD}/{SYMBOL}.csv.gz`, checks the
`Authorization: Bearer <key>` header, records every request, and answers chosen statuses for chosen
paths (a list of statuses is consumed one per request, then the file is served normally).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, urlsplit

import pytest

PREFIX = "/v1"


class TardisServer:
    """State of the fake datasets endpoint: files, expected key, scripted failures and the request log."""

    def __init__(self, api_key: str | None):
        self.api_key = api_key
        self.files: dict[str, bytes] = {}
        self.failures: dict[str, list[int]] = {}
        self.requests: list[tuple[str, str, str | None]] = []  # (path, query, authorization header)
        self.lock = threading.Lock()
        self.httpd: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        """Base URL to pass as the datasets endpoint."""
        assert self.httpd is not None
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{PREFIX}"

    @staticmethod
    def path(exchange: str, symbol: str, day: date) -> str:
        """URL path of one day's trades file, as tardis-dev builds it."""
        return f"{PREFIX}/{exchange}/trades/{day:%Y/%m/%d}/{quote(symbol, safe='')}.csv.gz"

    def add(self, exchange: str, symbol: str, day: date, body: bytes) -> str:
        """Serve `body` for that day; returns its path."""
        path = self.path(exchange, symbol, day)
        self.files[path] = body
        return path

    def fail(self, path: str, *statuses: int) -> None:
        """Answer the next requests for `path` with `statuses`, one each, before serving normally."""
        self.failures[path] = list(statuses)

    def hits(self, path: str) -> int:
        """How many requests asked for `path` (any query)."""
        with self.lock:
            return sum(1 for seen, _, _ in self.requests if seen == path)

    def answer(self, path: str, query: str, auth: str | None) -> tuple[int, bytes]:
        """(status, body) for one request."""
        with self.lock:
            self.requests.append((path, query, auth))
            if self.api_key is not None and auth != f"Bearer {self.api_key}":
                return 401, b'{"code":401,"message":"Unauthorized"}'
            scripted = self.failures.get(path)
            if scripted:
                status = scripted.pop(0)
                return status, f'{{"code":{status},"message":"scripted failure"}}'.encode()
            body = self.files.get(path)
        if body is None:
            return 404, b'{"code":404,"message":"Not found"}'
        return 200, body


def _handler(state: TardisServer) -> type[BaseHTTPRequestHandler]:
    """Request handler class bound to `state`."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            """Answer from the server state."""
            parts = urlsplit(self.path)
            status, body = state.answer(parts.path, parts.query, self.headers.get("Authorization"))
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream" if status == 200 else "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            """Quiet: the request log is kept in the state instead."""

    return Handler


def start(api_key: str | None = "test-key") -> TardisServer:
    """Start a server on 127.0.0.1 on a free port in a daemon thread."""
    state = TardisServer(api_key)
    state.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.httpd.daemon_threads = True
    threading.Thread(target=state.httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="tardis-http", daemon=True).start()
    return state


def stop(state: TardisServer) -> None:
    """Stop serving and close the socket."""
    assert state.httpd is not None
    state.httpd.shutdown()
    state.httpd.server_close()


@pytest.fixture
def tardis_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[TardisServer]:
    """A running fake datasets endpoint expecting API key `test-key`; proxies bypassed for 127.0.0.1."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.delenv("TARDIS_API_KEY", raising=False)
    monkeypatch.delenv("MDSTREAM_TARDIS_ENDPOINT", raising=False)
    state = start()
    try:
        yield state
    finally:
        stop(state)
