#!/usr/bin/env bash
# Static checks: ruff (lint and import order), mypy (types), import-linter (the layers of docs/architecture.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/lint-imports
