#!/usr/bin/env bash
# Run the whole test suite: install, start the local BigQuery emulator, run pytest, stop the emulator.
# Extra arguments go to pytest (e.g. scripts/test.sh -k candles).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/bq-emulator.sh setup
eval "$(scripts/bq-emulator.sh start)"
trap 'scripts/bq-emulator.sh stop >/dev/null 2>&1 || true' EXIT
.venv/bin/python -m pytest "$@"
