"""A small HTTP server on a daemon thread for /metrics (Prometheus text) and /healthz (JSON, 200 or 503)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

HEALTHY = ("ok", "starting")
HOST_ENV = "MDSTREAM_METRICS_HOST"


class MetricsServer:
    """A running /metrics + /healthz HTTP server on a daemon thread."""

    def __init__(self, httpd: ThreadingHTTPServer, thread: threading.Thread):
        """Wrap a started server and its thread."""
        self._httpd, self._thread = httpd, thread
        self.host, self.port = str(httpd.server_address[0]), int(httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:9464."""
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        """Stop serving, close the socket and join the thread."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def _handler(registry: CollectorRegistry, health: Callable[[], dict]) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to `registry` and `health`."""

    class Handler(BaseHTTPRequestHandler):
        """GET /metrics, /healthz; anything else is 404."""

        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            """Answer one GET request."""
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path in ("/healthz", "/health", "/"):
                try:
                    body = dict(health())
                except Exception as exc:  # a broken health probe must read as unhealthy, not kill the thread
                    body = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
                code = 200 if body.get("status") in HEALTHY else 503
                self._send(code, json.dumps(body, default=str).encode(), "application/json")
            else:
                self._send(404, b'{"error": "not found"}', "application/json")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            """Write status, headers and body."""
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            """Stay silent."""
            # Probes hit this every few seconds; access logs would drown the console.
            return

    return Handler


def default_host() -> str:
    """Bind address: $MDSTREAM_METRICS_HOST (containers set 0.0.0.0 so probes can reach it) or 127.0.0.1."""
    return os.environ.get(HOST_ENV) or "127.0.0.1"


def start_metrics_server(
    port: int,
    host: str | None = None,
    health: Callable[[], dict] | None = None,
    registry: CollectorRegistry | None = None,
) -> MetricsServer:
    """Serve /metrics (from `registry`) and /healthz (200 if health()["status"] is ok|starting, else 503)."""
    probe = health if health is not None else (lambda: {"status": "ok"})
    reg = registry if registry is not None else CollectorRegistry()
    httpd = ThreadingHTTPServer((host or default_host(), port), _handler(reg, probe))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="mdstream-metrics", daemon=True)
    thread.start()
    return MetricsServer(httpd, thread)
