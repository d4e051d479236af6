"""BigQuery as users run it, through the CLI: day after day, a retried day, a stream after a backfill and back;
unreachable at start-up (the stream honours --duration and Ctrl-C, batches wait in the spool); no credentials
(one line with the hint, every command); API errors of `bigquery init` in one line; names checked before SQL."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import pytest

from mdstream.sinks.bigquery.config import rest_client
from support.blackhole import blackhole
from support.bq_emulator import PROJECT, config_for, unique_symbol
from support.cli_run import Run, assert_one_line_error, mdstream, start
from support.day_files import day_file
from support.small_disk import fill, small_disk

pytestmark = pytest.mark.bigquery
D1, D2, D3 = date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)


def flags(emulator, dataset: str) -> list[str]:
    return ["--bq-project", PROJECT, "--bq-dataset", dataset, "--bq-api-endpoint", emulator.endpoint,
            "--bq-write-endpoint", emulator.grpc]


def spool(tmp_path) -> dict[str, str]:
    return {"MDSTREAM_BQ_SPOOL_DIR": str(tmp_path / "spool"), "MDSTREAM_BQ_REQUEST_LIMIT_BYTES": str(3 * 1024 * 1024),
            "MDSTREAM_BQ_SETUP_SECONDS": "3"}


def per_day(config, symbol: str) -> dict[str, int]:
    """Trades per day in candles_1d, after checking candles_latest shows one row per key."""
    client = rest_client(config)
    table = f"`{PROJECT}.{config.dataset}"
    raw = list(client.query(f"SELECT COUNT(*) AS n FROM {table}.candles` WHERE symbol = '{symbol}'").result())[0]["n"]
    latest = list(client.query(f"SELECT COUNT(*) AS n FROM {table}.candles_latest` WHERE symbol = '{symbol}'").result())[0]["n"]
    assert raw == latest, "a key stored twice"
    daily = client.query(f"SELECT FORMAT_TIMESTAMP('%Y-%m-%d', timestamp_in) AS d, trades FROM {table}.candles_1d` "
                         f"WHERE symbol = '{symbol}' ORDER BY d").result()
    return {row["d"]: row["trades"] for row in daily}


@pytest.mark.slow
def test_day_after_day_retries_and_a_stream_in_between(bq_emulator, bq_dataset, tmp_path):
    symbol = unique_symbol()
    files = [day_file(tmp_path / "in", d, n=300, symbol=symbol, span_s=3_600 if d == D3 else None) for d in (D1, D2, D3)]
    target = ["--sink", "bigquery", "--timeframes", "1m,1d", *flags(bq_emulator, bq_dataset)]
    for path in (files[0], files[1], files[1]):  # day N, day N+1, N+1 retried
        run = mdstream("backfill", "--input", str(path), "--quiet", *target, **spool(tmp_path))
        assert run.code == 0, run.text
    run = mdstream("stream", "--source", "replay", "--input", str(files[2]), "--speed", "0", "--lateness", "0",
                   "--quiet", *target, **spool(tmp_path))
    assert run.code == 0, run.text
    config = config_for(bq_emulator, tmp_path, bq_dataset)
    assert per_day(config, symbol) == {"2024-01-01": 300, "2024-01-02": 300, "2024-01-03": 300}
    # The streamed day backfilled afterwards: replaced, never doubled.
    run = mdstream("backfill", "--input", str(files[2]), "--quiet", *target, **spool(tmp_path))
    assert run.code == 0, run.text
    assert per_day(config, symbol) == {"2024-01-01": 300, "2024-01-02": 300, "2024-01-03": 300}


def test_two_shards_of_different_days_at_the_same_time(bq_emulator, bq_dataset, tmp_path):
    symbol = unique_symbol()
    files = [day_file(tmp_path / "in", d, n=200, symbol=symbol) for d in (D1, D2)]
    target = ["--sink", "bigquery", "--timeframes", "1d", *flags(bq_emulator, bq_dataset)]
    shards = [start("backfill", "--input", str(path), "--quiet", *target, **spool(tmp_path / path.stem)) for path in files]
    for shard in shards:
        out, err = shard.communicate(timeout=120)
        assert shard.returncode == 0, out + err
    assert per_day(config_for(bq_emulator, tmp_path, bq_dataset), symbol) == {"2024-01-01": 200, "2024-01-02": 200}


def unreachable(port: int) -> list[str]:
    return ["--bq-project", PROJECT, "--bq-dataset", "down", "--bq-api-endpoint", f"http://127.0.0.1:{port}",
            "--bq-write-endpoint", f"127.0.0.1:{port}"]


@pytest.mark.slow
def test_unreachable_at_start_the_stream_honours_duration_and_spools(tmp_path):
    with blackhole() as port:  # connections accepted, never answered: every call waits for its deadline
        began = time.monotonic()
        run = mdstream("stream", "--source", "synthetic", "--duration", "5", "--lateness", "0", "--timeframes", "15s",
                       "--mode", "ticks", "--sink", "bigquery", *unreachable(port), timeout=120, **spool(tmp_path),
                       NO_PROXY="127.0.0.1")
        took = time.monotonic() - began
    assert run.code == 0, run.text
    assert "Traceback" not in run.text
    assert took < 5 + 3 + 6, took  # the stream ran for its duration; closing waited at most one set-up attempt
    assert "wait in" in run.err and "the next run sends them first" in run.err, run.text
    assert any((tmp_path / "spool").rglob("*.arrow")), "the ticks wait on disk for the next run"


def test_unreachable_with_the_spool_on_a_full_disk_fails_in_one_line(tmp_path):
    with blackhole() as port, small_disk(tmp_path / "disk", "1m") as disk:
        fill(disk)
        run = mdstream("stream", "--source", "synthetic", "--duration", "4", "--mode", "ticks", "--sink", "bigquery",
                       *unreachable(port), timeout=120, **{**spool(tmp_path), "MDSTREAM_BQ_SPOOL_DIR": str(disk / "spool")},
                       NO_PROXY="127.0.0.1")
        assert_one_line_error(run, "disk full", "spool")
        assert not [p for p in disk.rglob("*") if p.name.endswith(".tmp")]


def test_unreachable_at_start_the_stream_stops_on_ctrl_c(tmp_path):
    with blackhole() as port:
        process = start("stream", "--source", "synthetic", "--duration", "120", "--lateness", "0", "--mode", "ticks",
                        "--sink", "bigquery", *unreachable(port), **spool(tmp_path), NO_PROXY="127.0.0.1")
        time.sleep(4)
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
        took = time.monotonic() - sent
    assert process.returncode == 0 and "Traceback" not in out + err, out + err
    assert took < 3 + 6, took


NO_CREDENTIALS = {"HOME": "{home}", "GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9",
                  "GOOGLE_CLOUD_PROJECT": "my-project-1", "MDSTREAM_BQ_DATASET": "mdstream"}
COMMANDS = [
    ["bigquery", "init"],
    ["backfill", "--input", "{file}", "--sink", "bigquery"],
    ["stream", "--source", "synthetic", "--duration", "3", "--sink", "bigquery"],
    ["verify", "--bigquery", "--symbols", "BTCUSDT", "--from", "2024-01-01", "--to", "2024-01-02"],
]


def test_without_credentials_every_command_says_how_to_log_in(tmp_path):
    (tmp_path / "home").mkdir()
    path = day_file(tmp_path / "in", D1, n=100)
    env = {k: v.format(home=tmp_path / "home") for k, v in NO_CREDENTIALS.items()}
    # google-auth probes the metadata server (here a closed local port) for a few seconds: all at once.
    processes = [start(*[a.format(file=path) for a in args], cwd=tmp_path, **env,
                       MDSTREAM_BQ_SPOOL_DIR=str(tmp_path / "spool")) for args in COMMANDS]
    for args, process in zip(COMMANDS, processes):
        out, err = process.communicate(timeout=60)
        run = Run(process.returncode, out, err)
        assert_one_line_error(run, "gcloud auth application-default login", "GOOGLE_APPLICATION_CREDENTIALS")
        assert len(run.err.strip().splitlines()) <= 2, (args, run.err)  # no 41-line traceback


class Forbidden(BaseHTTPRequestHandler):
    """A REST endpoint that refuses everything as BigQuery does without the role."""

    def do_POST(self) -> None:  # noqa: N802
        body = b'{"error": {"code": 403, "message": "Access Denied: Project test-project: User does not have bigquery.datasets.create permission", "status": "PERMISSION_DENIED"}}'
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST  # noqa: N815

    def log_message(self, *args) -> None:
        """Quiet."""


def test_bigquery_init_api_errors_are_one_line(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Forbidden)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        run = mdstream("bigquery", "init", "--bq-project", PROJECT, "--bq-dataset", "mdstream",
                       "--bq-api-endpoint", f"http://127.0.0.1:{server.server_address[1]}", NO_PROXY="127.0.0.1")
    finally:
        server.shutdown()
        server.server_close()
    assert_one_line_error(run, "Access Denied", "creating the BigQuery dataset and tables")


@pytest.mark.parametrize("flag, value, rule", [
    ("--bq-dataset", "{dataset}.candles`; DROP TABLE `{project}.{dataset}.candles`; --", "invalid BigQuery dataset"),
    ("--bq-dataset", "{dataset}` WHERE FALSE; --", "invalid BigQuery dataset"),
    ("--bq-project", "{project}`.x; DROP TABLE y; --", "invalid BigQuery project"),
    ("--symbols", "BTCUSDT') OR TRUE; --", "invalid symbol"),
])
def test_crafted_names_never_reach_sql(bq_emulator, bq_dataset, flag, value, rule, tmp_path):
    args = {"--bq-project": PROJECT, "--bq-dataset": bq_dataset, "--symbols": "BTCUSDT"}
    args[flag] = value.format(dataset=bq_dataset, project=PROJECT)
    run = mdstream("verify", "--bigquery", "--from", "2024-01-01", "--to", "2024-01-02",
                   "--bq-api-endpoint", bq_emulator.endpoint, "--bq-write-endpoint", bq_emulator.grpc,
                   *[part for item in args.items() for part in item])
    assert run.code in (1, 2), run.text
    assert rule in run.err and "Traceback" not in run.text, run.err
    tables = {t.table_id for t in rest_client(config_for(bq_emulator, tmp_path, bq_dataset)).list_tables(
        f"{PROJECT}.{bq_dataset}")}
    assert {"candles", "ticks", "quarantine", "candles_latest"} <= tables


def test_a_backfill_day_of_a_crafted_dataset_is_refused_before_any_call(tmp_path):
    path = day_file(tmp_path / "in", D1, n=100)
    began = time.monotonic()
    run = mdstream("backfill", "--input", str(path), "--sink", "bigquery", "--bq-project", PROJECT,
                   "--bq-dataset", "a-b", "--bq-api-endpoint", "http://127.0.0.1:9", "--bq-write-endpoint", "127.0.0.1:9")
    assert_one_line_error(run, "invalid BigQuery dataset 'a-b'")
    assert time.monotonic() - began < 10
    assert not subprocess.run(["ls", str(tmp_path / "spool")], capture_output=True).returncode == 0
