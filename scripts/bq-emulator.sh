#!/usr/bin/env bash
# Local BigQuery emulator (local-bigquery on DuckDB) for the BigQuery tests.
#   scripts/bq-emulator.sh setup   # idempotent: venv + packages + DuckDB extensions
#   scripts/bq-emulator.sh start   # background server; prints the export lines for the tests
#   scripts/bq-emulator.sh stop
# Env: MDSTREAM_BQ_EMULATOR_HOME (default ./.bq-emulator), MDSTREAM_BQ_EMULATOR_PORT / _GRPC_PORT
# (default: free ports), MDSTREAM_BQ_EMULATOR_PROJECT (default test-project, used for the readiness probe),
# MDSTREAM_BQ_EMULATOR_PYTHON (a Python 3.13 interpreter; found via pyenv or PATH otherwise).
set -euo pipefail

EMU_HOME="${MDSTREAM_BQ_EMULATOR_HOME:-./.bq-emulator}"
mkdir -p "$EMU_HOME"
EMU_HOME="$(cd "$EMU_HOME" && pwd)"
VENV="$EMU_HOME/venv"
PIDFILE="$EMU_HOME/server.pid"
ENVFILE="$EMU_HOME/server.env"
LOG="$EMU_HOME/server.log"
PROJECT="${MDSTREAM_BQ_EMULATOR_PROJECT:-test-project}"
# Pinned: 0.4.x fetches a DuckDB extension from the internet at start-up; 0.3.2 works offline.
PACKAGES=(local-bigquery==0.3.2 duckdb==1.5.5 duckdb-extension-icu==1.5.5
          duckdb-extension-ducklake==1.5.5 duckdb-extension-spatial==1.5.5)
START_TIMEOUT="${MDSTREAM_BQ_EMULATOR_START_TIMEOUT:-60}"

die() { echo "bq-emulator: $*" >&2; exit 1; }

find_python() {
  # The emulator needs Python 3.13; the project's own interpreter may be older.
  if [[ -n "${MDSTREAM_BQ_EMULATOR_PYTHON:-}" ]]; then echo "$MDSTREAM_BQ_EMULATOR_PYTHON"; return; fi
  if command -v pyenv >/dev/null 2>&1; then
    local root; root="$(pyenv root)"
    local candidate
    for candidate in "$root"/versions/3.13*/bin/python3; do
      [[ -x "$candidate" ]] && { echo "$candidate"; return; }
    done
  fi
  for candidate in python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 13) else 1)' 2>/dev/null; then
      command -v "$candidate"; return
    fi
  done
  die "no Python 3.13 interpreter found (set MDSTREAM_BQ_EMULATOR_PYTHON)"
}

free_port() {
  "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

cmd_setup() {
  if [[ -f "$EMU_HOME/.setup-done" ]] && [[ -x "$VENV/bin/local-bigquery" ]]; then
    echo "bq-emulator: already set up in $EMU_HOME"; return
  fi
  local py; py="$(find_python)"
  [[ -x "$VENV/bin/python" ]] || "$py" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PACKAGES[@]}"
  # The server would download these extensions at start-up; install them from the wheels instead,
  # into the DuckDB extension folder of the HOME the server runs with.
  mkdir -p "$EMU_HOME/home"
  HOME="$EMU_HOME/home" "$VENV/bin/python" - <<'PY'
import glob, os, site, duckdb
con = duckdb.connect()
for name in ("icu", "ducklake", "spatial"):
    hits = [p for d in site.getsitepackages() for p in glob.glob(os.path.join(d, "**", f"{name}.duckdb_extension"), recursive=True)]
    if not hits:
        raise SystemExit(f"bq-emulator: {name}.duckdb_extension not found in the venv")
    con.execute(f"INSTALL '{hits[0]}'")
    print(f"bq-emulator: installed DuckDB extension {name}")
PY
  touch "$EMU_HOME/.setup-done"
  echo "bq-emulator: set up in $EMU_HOME"
}

is_running() { [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

cmd_start() {
  [[ -x "$VENV/bin/local-bigquery" ]] || die "not set up; run: $0 setup"
  if is_running && [[ -f "$ENVFILE" ]]; then cat "$ENVFILE"; return; fi
  local port="${MDSTREAM_BQ_EMULATOR_PORT:-$(free_port)}"
  local grpc="${MDSTREAM_BQ_EMULATOR_GRPC_PORT:-$(free_port)}"
  mkdir -p "$EMU_HOME/data"
  # setsid: the server outlives this script, and stop can signal its whole group.
  HOME="$EMU_HOME/home" setsid "$VENV/bin/local-bigquery" --host 127.0.0.1 --port "$port" \
    --grpc-port "$grpc" --data-dir "$EMU_HOME/data" >"$LOG" 2>&1 < /dev/null &
  local pid=$!
  echo "$pid" >"$PIDFILE"
  local url="http://127.0.0.1:$port/bigquery/v2/projects/$PROJECT/datasets"
  local deadline=$((SECONDS + START_TIMEOUT))
  # Ready when the REST side answers and the Storage Write API's gRPC port takes connections (it can lag).
  until [[ "$(curl -s -o /dev/null -w '%{http_code}' "$url" 2>/dev/null || true)" == "200" ]] \
      && (exec 3<>"/dev/tcp/127.0.0.1/$grpc") 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PIDFILE"; tail -n 30 "$LOG" >&2; die "server exited during start-up (log: $LOG)"
    fi
    if (( SECONDS >= deadline )); then
      tail -n 30 "$LOG" >&2; cmd_stop >/dev/null; die "server not ready after ${START_TIMEOUT}s (log: $LOG)"
    fi
    sleep 0.2
  done
  printf 'export MDSTREAM_TEST_BQ_ENDPOINT=http://127.0.0.1:%s\nexport MDSTREAM_TEST_BQ_GRPC=127.0.0.1:%s\n' \
    "$port" "$grpc" | tee "$ENVFILE"
}

cmd_stop() {
  if [[ -f "$PIDFILE" ]]; then
    local pid; pid="$(cat "$PIDFILE")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDFILE" "$ENVFILE"
  fi
  echo "bq-emulator: stopped"
}

case "${1:-}" in
  setup) cmd_setup ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  *) echo "usage: $0 setup|start|stop" >&2; exit 2 ;;
esac
