#!/usr/bin/env bash
# One command on a fresh machine: install, then run the offline demo (no network, no credentials):
# simulate a trading day for two symbols, backfill it into ./mdstream.duckdb and print what was written.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/mdstream demo "$@"
echo
echo "Next: .venv/bin/mdstream query \"SELECT * FROM data_quality\"  |  .venv/bin/mdstream stream --source synthetic --duration 30"
