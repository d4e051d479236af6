#!/usr/bin/env bash
# Install check, as a new user installs: build the wheel, install it with plain `pip install` into a fresh
# venv (no constraints, no dev extras), then run the offline demo, a short synthetic stream and a query.
#   scripts/check_install.sh
# Env: PYTHON (default python3), KEEP=1 keeps the work folder.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
work="$(mktemp -d)"
[[ "${KEEP:-}" == 1 ]] || trap 'rm -rf "$work"' EXIT
"$PY" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip
"$work/venv/bin/python" -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" .
"$work/venv/bin/python" -m pip install --quiet "$work"/dist/mdstream-*.whl
cd "$work"
bin="$work/venv/bin"
"$bin/mdstream" --version
"$bin/mdstream" demo --duckdb demo.duckdb --folder sample
"$bin/mdstream" stream --source synthetic --duration 5 --mode both --duckdb stream.duckdb --quiet
"$bin/mdstream" query --duckdb stream.duckdb --format csv "SELECT count(*) AS ticks FROM ticks"
echo "install check passed: wheel installed with plain pip, demo and synthetic stream ran"
