"""`mdstream stream` as a real subprocess against a local server, with its /metrics and /healthz read over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    """(status, body) of a GET; (0, b"") when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


class CliStream:
    """One `python -m mdstream stream` job writing ticks and candles to a DuckDB file, metrics on a free port."""

    def __init__(self, folder: Path, source: str, symbols: str, url: str, *extra: str, name: str = "job"):
        self.db, self.log = folder / f"{name}.duckdb", folder / f"{name}.log"
        self.port = free_port()
        self.args = [
            sys.executable, "-m", "mdstream", "stream", "--source", source, "--symbols", symbols, "--url", url,
            "--duckdb", str(self.db), "--mode", "both", "--quiet", "--flush-interval", "0.1", "--lateness", "0.5",
            "--metrics-port", str(self.port), "--silence-timeout", "1", "--max-feed-down", "1", "--duration", "120",
            *extra,
        ]
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> CliStream:
        """Launch the job; returns once its metrics endpoint answers."""
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with open(self.log, "wb") as out:
            self.proc = await asyncio.create_subprocess_exec(*self.args, stdout=out, stderr=out, env=env)
        await self.wait_for(lambda: self.metrics() is not None, "the metrics endpoint", timeout=30)
        return self

    def output(self) -> str:
        """What the job printed so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def metrics(self) -> dict[tuple[str, tuple], float] | None:
        """Every sample of /metrics by (name, sorted labels), or None when it does not answer."""
        code, body = _get(f"http://127.0.0.1:{self.port}/metrics")
        if code != 200:
            return None
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(body.decode()) for s in family.samples}

    def health(self) -> tuple[int, dict]:
        """(status code, body) of /healthz."""
        code, body = _get(f"http://127.0.0.1:{self.port}/healthz")
        return code, json.loads(body) if body else {}

    def total(self, name: str, samples: dict | None = None, **labels: str) -> float:
        """Sum of the samples of metric `name` whose labels include `labels` (0 when absent), from `samples` or
        a fresh scrape."""
        samples = samples if samples is not None else (self.metrics() or {})
        return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))

    async def wait_for(self, predicate, what: str, timeout: float = 20.0, poll: float = 0.1):
        """Poll `predicate` (run off the event loop: it may do HTTP) until it returns something truthy."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = await asyncio.to_thread(predicate)
            if value:
                return value
            if self.proc is not None and self.proc.returncode is not None:
                break
            await asyncio.sleep(poll)
        raise AssertionError(f"timed out waiting for {what}; job output:\n{self.output()[-4000:]}")

    def accounting(self, source: str) -> dict[str, float]:
        """The source's message accounting from /metrics."""
        keys = {"received": "mdstream_source_received_total", "accepted": "mdstream_source_accepted_total",
                "quarantined": "mdstream_source_quarantined_total", "duplicates": "mdstream_source_duplicates_total",
                "ignored": "mdstream_source_ignored_total", "reconnects": "mdstream_reconnects_total"}
        samples = self.metrics() or {}  # one scrape: the counts of one moment
        return {key: self.total(name, samples, source=source) for key, name in keys.items()}

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send `sig`, wait for the exit, return the exit code (kill and fail past `timeout`)."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(f"job did not exit on signal {sig}; output:\n{self.output()[-4000:]}") from None

    async def kill(self) -> None:
        """Make sure the job is gone."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
