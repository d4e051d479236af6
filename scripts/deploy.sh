#!/usr/bin/env bash
# Build, push and run mdstream: on Cloud Run Jobs (default), on Kubernetes, or locally with compose.
#
#   scripts/deploy.sh --mode candles --symbol BTC-USDT --duration 3600          stream on Cloud Run
#   scripts/deploy.sh --mode ticks --symbol BTC-USDT --symbol ETH-USDT --target k8s --shards 2
#   scripts/deploy.sh --backfill --symbol BTC-USDT --from 2024-01-01 --to 2024-02-01 --tasks 31
#   scripts/deploy.sh --local --mode candles --symbol BTC-USDT --duration 60     compose, DuckDB, no cloud
#   add --dry-run to any of them to print every command instead of running it.
#
# Options:
#   --mode candles|ticks|both   what the stream writes (default candles)
#   --symbol SYM                repeatable; BTC-USDT, BTC/USDT and btcusdt all mean BTCUSDT
#   --duration SECONDS          stop the stream after this long (default: run until stopped)
#   --source NAME               binance | tardis-machine | synthetic (default binance)
#   --backfill                  run the historical backfill instead of the stream
#   --exchange ID --from DAY --to DAY   backfill range (--to is exclusive); exchange default binance-futures
#   --tasks N                   backfill tasks, i.e. (date, symbol) shards (default 16)
#   --shards N                  stream shards: Cloud Run tasks or StatefulSet replicas (default: one per symbol)
#   --local                     docker compose on this machine (profile local, DuckDB); no push, no cloud
#   --target cloudrun|k8s       where to run in the cloud (default cloudrun)
#   --project ID --region R     Google Cloud project (default $GOOGLE_CLOUD_PROJECT) and region (default us-central1)
#   --image URI                 image to build and push (default REGION-docker.pkg.dev/PROJECT/mdstream/mdstream:TAG)
#   --tag TAG                   image tag (default: git short commit, else "latest")
#   --dry-run                   print the commands, run nothing
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODE=candles SOURCE=binance DURATION="" BACKFILL=0 LOCAL=0 DRY_RUN=0 TARGET=cloudrun
EXCHANGE=binance-futures FROM="" TO="" TASKS=16 SHARDS="" IMAGE="" TAG=""
PROJECT="${GOOGLE_CLOUD_PROJECT:-}" REGION="${MDSTREAM_REGION:-us-central1}"
SYMBOLS=()

die() { echo "deploy: $*" >&2; exit 2; }
usage() { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"; exit "${1:-0}"; }
need() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --mode) need "$@"; MODE="$2"; shift 2 ;;
    --symbol) need "$@"; SYMBOLS+=("$2"); shift 2 ;;
    --duration) need "$@"; DURATION="$2"; shift 2 ;;
    --source) need "$@"; SOURCE="$2"; shift 2 ;;
    --backfill) BACKFILL=1; shift ;;
    --exchange) need "$@"; EXCHANGE="$2"; shift 2 ;;
    --from) need "$@"; FROM="$2"; shift 2 ;;
    --to) need "$@"; TO="$2"; shift 2 ;;
    --tasks) need "$@"; TASKS="$2"; shift 2 ;;
    --shards) need "$@"; SHARDS="$2"; shift 2 ;;
    --local) LOCAL=1; shift ;;
    --target) need "$@"; TARGET="$2"; shift 2 ;;
    --project) need "$@"; PROJECT="$2"; shift 2 ;;
    --region) need "$@"; REGION="$2"; shift 2 ;;
    --image) need "$@"; IMAGE="$2"; shift 2 ;;
    --tag) need "$@"; TAG="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

# ---- validation ----------------------------------------------------------------------------------
case "$MODE" in candles|ticks|both) ;; *) die "--mode must be candles, ticks or both, got '$MODE'" ;; esac
case "$TARGET" in cloudrun|k8s) ;; *) die "--target must be cloudrun or k8s, got '$TARGET'" ;; esac
is_count() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }
[[ -z "$DURATION" || "$DURATION" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--duration must be seconds, got '$DURATION'"
is_count "$TASKS" || die "--tasks must be a positive integer, got '$TASKS'"
[[ -z "$SHARDS" ]] || is_count "$SHARDS" || die "--shards must be a positive integer, got '$SHARDS'"
[[ ${#SYMBOLS[@]} -gt 0 ]] || SYMBOLS=(BTC-USDT)

# BTC-USDT / BTC/USDT / btcusdt -> BTCUSDT, the exchange's own spelling used everywhere in mdstream.
normalize_symbol() {
  local s="${1//-/}"; s="${s//\//}"; s="${s//_/}"
  [[ "$s" =~ ^[A-Za-z0-9]+$ ]] || die "bad symbol '$1'"
  echo "${s^^}"
}
NORMALIZED=()
for sym in "${SYMBOLS[@]}"; do NORMALIZED+=("$(normalize_symbol "$sym")"); done
SYMBOL_LIST="$(IFS=,; echo "${NORMALIZED[*]}")"
[[ -n "$SHARDS" ]] || SHARDS="${#NORMALIZED[@]}"

if [[ "$BACKFILL" == 1 ]]; then
  [[ "$FROM" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] || die "--backfill needs --from YYYY-MM-DD"
  [[ "$TO" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] || die "--backfill needs --to YYYY-MM-DD (exclusive)"
fi

# ---- command runner --------------------------------------------------------------------------------
run() {
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '+'; printf ' %q' "$@"; printf '\n'
  else
    "$@"
  fi
}

# Copy a spec with the placeholder image replaced (plus optional sed expressions); printed in dry-run mode.
render() {
  local src="$1" dest="$2"; shift 2
  local args=(-e "s|image: mdstream-image|image: ${IMAGE}|")
  local expr
  for expr in "$@"; do args+=(-e "$expr"); done
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '+ sed'; printf ' %q' "${args[@]}" "$src"; printf ' > %q\n' "$dest"
  else
    sed "${args[@]}" "$src" > "$dest"
  fi
}

# ---- local: docker compose, DuckDB in a named volume -------------------------------------------------
if [[ "$LOCAL" == 1 ]]; then
  cd "$ROOT"
  if [[ "$BACKFILL" == 1 ]]; then
    run env MDSTREAM_EXCHANGE="$EXCHANGE" MDSTREAM_SYMBOLS="$SYMBOL_LIST" MDSTREAM_FROM="$FROM" MDSTREAM_TO="$TO" \
      docker compose --profile backfill run --rm --build backfill
    exit 0
  fi
  run docker compose --profile local build stream-local
  if [[ -n "$DURATION" ]]; then
    run docker compose --profile local run --rm --service-ports stream-local \
      stream --source "$SOURCE" --symbols "$SYMBOL_LIST" --mode "$MODE" --sink duckdb \
      --duckdb /data/mdstream.duckdb --metrics-port 9464 --duration "$DURATION"
  else
    run env MDSTREAM_SOURCE="$SOURCE" MDSTREAM_SYMBOLS="$SYMBOL_LIST" MDSTREAM_MODE="$MODE" \
      docker compose --profile local up stream-local
  fi
  exit 0
fi

# ---- cloud: build and push -------------------------------------------------------------------------
if [[ -z "$PROJECT" && "$DRY_RUN" == 0 ]]; then
  PROJECT="$(gcloud config get-value project 2>/dev/null || true)"
fi
[[ -n "$PROJECT" ]] || die "no Google Cloud project: pass --project or set GOOGLE_CLOUD_PROJECT"
if [[ -z "$TAG" ]]; then
  TAG="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo latest)"
fi
REGISTRY="${REGION}-docker.pkg.dev"
[[ -n "$IMAGE" ]] || IMAGE="${REGISTRY}/${PROJECT}/mdstream/mdstream:${TAG}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

run docker build --tag "$IMAGE" "$ROOT"
run gcloud auth configure-docker "$REGISTRY" --quiet
run docker push "$IMAGE"

if [[ "$TARGET" == cloudrun ]]; then
  if [[ "$BACKFILL" == 1 ]]; then
    render "$ROOT/jobs/cloudrun/backfill-job.yaml" "$WORK/backfill-job.yaml"
    run gcloud run jobs replace "$WORK/backfill-job.yaml" --project "$PROJECT" --region "$REGION"
    # '^@^' makes @ the list separator, so the comma-separated symbol list survives (gcloud topic escaping).
    run gcloud run jobs execute mdstream-backfill --project "$PROJECT" --region "$REGION" --tasks "$TASKS" \
      --update-env-vars "^@^MDSTREAM_EXCHANGE=${EXCHANGE}@MDSTREAM_SYMBOLS=${SYMBOL_LIST}@MDSTREAM_FROM=${FROM}@MDSTREAM_TO=${TO}" \
      --wait
  else
    render "$ROOT/jobs/cloudrun/stream-job.yaml" "$WORK/stream-job.yaml"
    run gcloud run jobs replace "$WORK/stream-job.yaml" --project "$PROJECT" --region "$REGION"
    run gcloud run jobs execute mdstream-stream --project "$PROJECT" --region "$REGION" --tasks "$SHARDS" \
      --update-env-vars "^@^MDSTREAM_SOURCE=${SOURCE}@MDSTREAM_SYMBOLS=${SYMBOL_LIST}@MDSTREAM_MODE=${MODE}@MDSTREAM_DURATION=${DURATION:-86000}"
  fi
  exit 0
fi

# ---- cloud: Kubernetes (kubectl's current context) ---------------------------------------------------
run kubectl apply -f "$ROOT/jobs/k8s/configmap.yaml"
if [[ "$BACKFILL" == 1 ]]; then
  run kubectl patch configmap mdstream-config --type merge -p \
    "{\"data\":{\"MDSTREAM_EXCHANGE\":\"${EXCHANGE}\",\"MDSTREAM_SYMBOLS\":\"${SYMBOL_LIST}\",\"MDSTREAM_FROM\":\"${FROM}\",\"MDSTREAM_TO\":\"${TO}\",\"GOOGLE_CLOUD_PROJECT\":\"${PROJECT}\"}}"
  render "$ROOT/jobs/k8s/backfill-indexed-job.yaml" "$WORK/backfill-indexed-job.yaml" \
    "s|^  completions: [0-9]*|  completions: ${TASKS}|" \
    "s|value: \"[0-9]*\"  # keep equal to spec.completions|value: \"${TASKS}\"  # keep equal to spec.completions|"
  # A Job's pod template is immutable: replace the previous run's Job.
  run kubectl delete job mdstream-backfill --ignore-not-found
  run kubectl apply -f "$WORK/backfill-indexed-job.yaml"
  run kubectl wait --for=condition=complete job/mdstream-backfill --timeout=24h
  exit 0
fi
run kubectl patch configmap mdstream-config --type merge -p \
  "{\"data\":{\"MDSTREAM_SOURCE\":\"${SOURCE}\",\"MDSTREAM_SYMBOLS\":\"${SYMBOL_LIST}\",\"MDSTREAM_MODE\":\"${MODE}\",\"GOOGLE_CLOUD_PROJECT\":\"${PROJECT}\"}}"
# Shard count and replicas move together; a changed count rolls every pod onto the new assignment.
render "$ROOT/jobs/k8s/stream-statefulset.yaml" "$WORK/stream-statefulset.yaml" \
  "s|^  replicas: [0-9]*|  replicas: ${SHARDS}|" \
  "s|value: \"[0-9]*\"  # keep equal to spec.replicas|value: \"${SHARDS}\"  # keep equal to spec.replicas|"
run kubectl apply -f "$WORK/stream-statefulset.yaml"
# Pods read the ConfigMap at start: restart them so a changed symbol list or mode takes effect.
run kubectl rollout restart statefulset/mdstream-stream
run kubectl rollout status statefulset/mdstream-stream --timeout 10m
if [[ -n "$DURATION" ]]; then
  run sleep "$DURATION"
  run kubectl scale statefulset/mdstream-stream --replicas 0
fi
