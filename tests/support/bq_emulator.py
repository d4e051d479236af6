"""The local BigQuery emulator for tests: use the running one (env) or start one via scripts/bq-emulator.sh."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "bq-emulator.sh"
ENDPOINT_ENV = "MDSTREAM_TEST_BQ_ENDPOINT"
GRPC_ENV = "MDSTREAM_TEST_BQ_GRPC"
HOME_ENV = "MDSTREAM_BQ_EMULATOR_HOME"
PROJECT = "test-project"


@dataclass
class Emulator:
    """Where a running emulator answers, and whether this process started it."""

    endpoint: str  # REST, e.g. http://127.0.0.1:9050
    grpc: str  # Storage Read/Write, e.g. 127.0.0.1:9060
    home: Path
    owned: bool

    @property
    def port(self) -> int:
        """REST port."""
        return int(self.endpoint.rsplit(":", 1)[1])

    @property
    def grpc_port(self) -> int:
        """gRPC port."""
        return int(self.grpc.rsplit(":", 1)[1])

    def stop(self) -> None:
        """Stop the server (SIGTERM via the script); its data folder stays."""
        _script("stop", self.home)

    def start(self) -> None:
        """Start the server again on the same ports and wait until it answers."""
        _script("start", self.home, {"MDSTREAM_BQ_EMULATOR_PORT": str(self.port),
                                     "MDSTREAM_BQ_EMULATOR_GRPC_PORT": str(self.grpc_port)})
        wait_ready(self.endpoint, self.grpc)

    def restart(self) -> None:
        """Stop and start on the same ports; tables survive, write streams do not (as after a real outage)."""
        self.stop()
        self.start()


def _home() -> Path:
    """Emulator folder: $MDSTREAM_BQ_EMULATOR_HOME or .bq-emulator at the repository root."""
    return Path(os.environ.get(HOME_ENV, REPO / ".bq-emulator")).resolve()


def _script(action: str, home: Path, extra: dict[str, str] | None = None) -> str:
    """Run scripts/bq-emulator.sh <action>; its stdout, or RuntimeError with its stderr."""
    env = {**os.environ, HOME_ENV: str(home), **(extra or {})}
    done = subprocess.run(["bash", str(SCRIPT), action], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"bq-emulator.sh {action} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout


def _parse_exports(text: str) -> dict[str, str]:
    """`export K=V` lines -> {K: V}."""
    pairs = (line.removeprefix("export ").split("=", 1) for line in text.splitlines() if line.startswith("export "))
    return {key: value for key, value in pairs}


def wait_ready(endpoint: str, grpc: str | None = None, timeout: float = 30.0) -> None:
    """Poll the dataset list until it answers 200 and (given) the gRPC port of the Storage Write API until it takes
    connections, or raise after `timeout` seconds: the REST side answering first does not mean writes can start,
    and a sink closing right after an outage gives its spool only a short while (bigquery/sink.RECONNECT_S)."""
    url = f"{endpoint}/bigquery/v2/projects/{PROJECT}/datasets"
    deadline = time.monotonic() + timeout
    while not _answers(url) or (grpc is not None and not _listens(grpc)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"BigQuery emulator at {endpoint} ({grpc}) not ready after {timeout}s")
        time.sleep(0.1)


def _answers(url: str) -> bool:
    """Whether a GET of `url` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _listens(address: str) -> bool:
    """Whether host:port takes a TCP connection."""
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


def start_or_attach() -> Emulator:
    """The emulator named by the env vars, or a fresh one set up and started through the script."""
    home = _home()
    if os.environ.get(ENDPOINT_ENV) and os.environ.get(GRPC_ENV):
        emulator = Emulator(os.environ[ENDPOINT_ENV], os.environ[GRPC_ENV], home, owned=False)
        wait_ready(emulator.endpoint, emulator.grpc)
        return emulator
    _script("setup", home)
    exports = _parse_exports(_script("start", home))
    return Emulator(exports[ENDPOINT_ENV], exports[GRPC_ENV], home, owned=True)


@pytest.fixture(scope="session")
def bq_emulator():
    """A running BigQuery emulator for the session; skipped with the reason only if it cannot be set up."""
    try:
        emulator = start_or_attach()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
        if os.environ.get("CI"):
            raise  # in CI a missing emulator is a failure, not a skip
        pytest.skip(f"BigQuery emulator unavailable: {error}")
    yield emulator
    if emulator.owned:
        emulator.stop()


def config_for(emulator: Emulator, tmp_path: Path, dataset: str, **overrides):
    """A BigQueryConfig pointing at `emulator`: its own dataset, spool under tmp_path, short timeouts."""
    from mdstream.sinks.bigquery import BigQueryConfig

    settings = dict(project=PROJECT, dataset=dataset, location="US", api_endpoint=emulator.endpoint,
                    write_endpoint=emulator.grpc, request_limit_bytes=3 * 1024 * 1024,
                    spool_dir=tmp_path / "spool", timeout_seconds=10.0, spool_block_seconds=20.0)
    settings.update(overrides)
    return BigQueryConfig(**settings)


def candles(symbol: str = "BTCUSDT", start: str = "2020-02-22T00:00:00", count: int = 60, timeframe: str = "1m",
            revision: int = 0, exchange: str = "binance-futures", price: float = 9700.0):
    """`count` consecutive candles of one series with plausible values (a deterministic random walk)."""
    from datetime import datetime, timedelta, timezone

    import polars as pl

    from mdstream.contract import columns as c
    from mdstream.contract import schema as s
    from mdstream.contract import timeframes

    step = timedelta(seconds=timeframes.duration_seconds(timeframe))
    t0 = datetime.fromisoformat(start).replace(tzinfo=timezone.utc)
    rows = []
    close = price
    for i in range(count):
        open_ = close
        close = round(open_ * (1 + 0.0003 * ((i * 7919) % 13 - 6)), 2)
        volume = 1.0 + (i * 31) % 17
        start_i = t0 + i * step
        rows.append({c.EXCHANGE: exchange, c.SYMBOL: symbol, c.TIMEFRAME: timeframe, c.TIMESTAMP_IN: start_i,
                     c.TIMESTAMP_OUT: start_i + step + timedelta(milliseconds=150), c.LATENCY_MS: 150.0,
                     c.OPEN: open_, c.HIGH: max(open_, close) + 1, c.LOW: min(open_, close) - 1, c.CLOSE: close,
                     c.VOLUME: volume, c.BASE_VOLUME: volume, c.QUOTE_VOLUME: volume * (open_ + close) / 2,
                     c.BUY_VOLUME: volume * 0.6,
                     c.SELL_VOLUME: volume * 0.4, c.TRADES: 10 + i % 5, c.VWAP: (open_ + close) / 2,
                     c.FIRST_TRADE_AT: start_i + timedelta(milliseconds=5), c.LAST_TRADE_AT: start_i + step / 2,
                     c.GAP: None, c.REVISION: revision, c.LATE_TRADES: revision, "sma_5": close})
    return s.conform(pl.DataFrame(rows), s.CANDLE_SCHEMA)


@pytest.fixture(scope="session")
def bq_dataset(bq_emulator, tmp_path_factory) -> str:
    """One dataset with tables and views for the session (views are slow to create on the emulator).

    Tests sharing it keep apart by writing their own symbols.
    """
    import uuid

    from mdstream.sinks.bigquery.config import rest_client
    from mdstream.sinks.bigquery.schema import ensure_tables
    from mdstream.sinks.bigquery.views import create_views

    config = config_for(bq_emulator, tmp_path_factory.mktemp("bq"), f"mdstream_test_{uuid.uuid4().hex[:8]}",
                        timeout_seconds=60.0)
    client = rest_client(config)
    ensure_tables(client, config)
    create_views(client, config)
    return config.dataset


def unique_symbol() -> str:
    """A symbol no other test writes, e.g. T3F9A1C2BUSDT."""
    import uuid

    return f"T{uuid.uuid4().hex[:8].upper()}USDT"
