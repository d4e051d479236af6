#!/usr/bin/env bash
# Create ./.venv and install mdstream with its pinned dependencies (constraints.txt). Idempotent.
#   scripts/setup.sh          # runtime + dev/test extras
# Env: PYTHON (default: python3, must be >= 3.11), MDSTREAM_VENV (default ./.venv)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
VENV="${MDSTREAM_VENV:-.venv}"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "mdstream needs Python >= 3.11")'
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# setuptools notes that an editable install maps sql/ into the package; that is intended, so it is not shown.
PYTHONWARNINGS="ignore::UserWarning" "$VENV/bin/python" -m pip install --quiet -c constraints.txt -e '.[dev]'
echo "mdstream installed in $VENV ($("$VENV/bin/mdstream" --version))"
