"""The README's and the guide's examples run as written, from a repository root after the quickstart (the demo
has simulated a day into data/sample/ and ./mdstream.duckdb). Tardis downloads come from a local server in
Tardis's URL layout; examples that need a live exchange, Google Cloud or Docker are skipped by rule, named."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from conftest import REPO

from support.day_files import day_file

# (pattern, why it is not run here); everything else in a bash block runs.
NOT_RUN = [
    (r"^scripts/(quickstart|setup)\.sh", "the quickstart is the precondition (done first)"),
    (r"^scripts/test\.sh", "runs this very suite"),
    (r"^scripts/deploy\.sh", "checked as dry runs by test_deploy"),
    (r"--source binance\b", "needs the live exchange"),
    (r"--source ccxt\b", "needs the live exchange (test_sources_ccxt runs it against local venue stand-ins)"),
    (r"^(gcloud|bq) |--sink bigquery|bigquery init", "needs Google Cloud (the emulator tests cover these)"),
    (r"^docker", "needs Docker (test_dockerfile covers the image)"),
    (r"^mdstream serve\b", "a web server that runs until stopped (test_serve and test_serve_live cover it)"),
    (r"^(python -m venv|pip install|\. \.venv)", "installation (scripts/check_install.sh covers a plain install)"),
]


def commands(markdown: Path) -> list[str]:
    """Shell commands of the ```bash blocks of `markdown`, continuation lines joined, comments and blanks dropped."""
    text = markdown.read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                out.append(line)
    return out


def runnable(markdown: Path) -> list[str]:
    """The commands of `markdown` not excluded by NOT_RUN."""
    return [cmd for cmd in commands(markdown) if not any(re.search(p, cmd) for p, _ in NOT_RUN)]


def serve_month(server, folder: Path) -> None:
    """January 2024 of BTCUSDT and ETHUSDT, small days, on the local Tardis server; and the derivatives days the
    guide's contract examples ask for."""
    for symbol in ("BTCUSDT", "ETHUSDT"):
        for i in range(31):
            day = date(2024, 1, 1) + timedelta(days=i)
            server.add("binance-futures", symbol, day, day_file(folder, day, n=500, symbol=symbol).read_bytes())
    for exchange, symbol, days in (("binance-delivery", "BTCUSD_PERP", 2), ("okex-swap", "SOL-USDT-SWAP", 1)):
        for i in range(days):
            day = date(2024, 8, 8) + timedelta(days=i)
            data = day_file(folder, day, n=500, symbol=symbol, exchange=exchange).read_bytes()
            server.add(exchange, symbol, day, data)


def run_after_quickstart(cmds: list[str], root: Path, server) -> None:
    """Run the demo (the quickstart's last step), then `cmds` in order in one shell at `root`."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "PYTHONUNBUFFERED": "1",
           "MDSTREAM_TARDIS_ENDPOINT": server.endpoint, "NO_PROXY": "127.0.0.1",
           "MDSTREAM_INSTRUMENTS_FETCH": "off"}  # the built-in table, never the venues' servers
    env = {k: v for k, v in env.items() if not k.startswith(("MDSTREAM_DUCKDB", "MDSTREAM_BQ", "GOOGLE_"))}
    script = ["set -u", "mdstream demo >/dev/null"]
    for cmd in cmds:
        script.append(f"{cmd} > last.out 2>&1 || {{ echo {shlex.quote(cmd)} failed:; cat last.out; exit 1; }}")
    done = subprocess.run(["bash", "-c", "\n".join(script)], cwd=root, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("doc", ["README.md", "docs/guide.md"])
def test_examples_run_as_written_after_the_quickstart(doc, tardis_server, tmp_path):
    tardis_server.api_key = None  # the examples export a placeholder key
    serve_month(tardis_server, tmp_path / "served")
    root = tmp_path / "repo"
    root.mkdir()
    cmds = runnable(REPO / doc)
    assert any(cmd.startswith("mdstream backfill") for cmd in cmds) and any("query" in cmd for cmd in cmds)
    run_after_quickstart(cmds, root, tardis_server)


def test_the_examples_parse_with_the_real_cli(tmp_path, monkeypatch):
    """Fast check of every mdstream example's options and values, in a root the quickstart prepared."""
    from mdstream.inputs.sample import demo_files
    from support.cli_check import invoke_check

    demo_files(tmp_path / "data" / "sample", n=1_000)
    monkeypatch.chdir(tmp_path)
    for doc in ("README.md", "docs/guide.md"):
        for cmd in runnable(REPO / doc):
            if cmd.startswith("mdstream ") and cmd != "mdstream --help":
                invoke_check(shlex.split(cmd, comments=True)[1:])
