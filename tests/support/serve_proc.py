"""`mdstream serve` and `mdstream stream` as subprocesses for the serve tests, and plain HTTP reads of the server."""

from __future__ import annotations

import json
import os
import re
import selectors
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

URL_LINE = re.compile(r"on (http://\S+/) ")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mdstream(*args: str, **popen) -> subprocess.Popen:
    """`python -m mdstream ARGS` with unbuffered output, stdout and stderr merged."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "mdstream", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, **popen)


def read_until(proc: subprocess.Popen, pattern: re.Pattern, timeout: float = 30.0) -> re.Match:
    """Read `proc`'s output lines until one matches `pattern`; AssertionError with the output on timeout or exit."""
    seen: list[str] = []
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not selector.select(timeout=0.1):
            continue
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        found = pattern.search(line)
        if found:
            return found
    raise AssertionError(f"no line matching {pattern.pattern!r}; output:\n{''.join(seen)[-3000:]}")


def stop(proc: subprocess.Popen, timeout: float = 15.0) -> str:
    """SIGTERM `proc`, wait for it (kill after `timeout`), return the rest of its output."""
    if proc.poll() is None:
        proc.terminate()
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out or ""


@contextmanager
def served(db: Path, *extra: str):
    """A running `mdstream serve --port 0` over `db`; yields its base URL (http://127.0.0.1:PORT/)."""
    proc = mdstream("serve", "--duckdb", str(db), "--port", "0", *extra)
    try:
        url = read_until(proc, URL_LINE).group(1)
        yield url
    finally:
        out = stop(proc)
        assert proc.returncode == 0, out[-3000:]


def get(url: str, timeout: float = 10.0) -> tuple[int, dict | str]:
    """GET `url`: (status, parsed JSON or text), also for 4xx/5xx answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status, body, kind = response.status, response.read(), response.headers.get_content_type()
    except urllib.error.HTTPError as exc:
        status, body, kind = exc.code, exc.read(), exc.headers.get_content_type()
    text = body.decode()
    return status, json.loads(text) if kind == "application/json" else text


@contextmanager
def event_stream(url: str, timeout: float = 10.0):
    """Open a server-sent event stream; yields next_event(deadline_s) -> (event, data) that skips comments."""
    response = urllib.request.urlopen(url, timeout=timeout)

    def next_event(within: float = timeout) -> tuple[str, dict]:
        """The next event within `within` seconds."""
        deadline = time.monotonic() + within
        event, data = "message", []
        while time.monotonic() < deadline:
            line = response.readline().decode()
            if not line:
                raise AssertionError("event stream closed")
            line = line.rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and data:
                return event, json.loads("\n".join(data))
        raise AssertionError(f"no event within {within} s")

    try:
        yield next_event
    finally:
        response.close()
