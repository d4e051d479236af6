# syntax=docker/dockerfile:1
# mdstream: trade ticks -> multi-timeframe candles and features (DuckDB, Parquet, BigQuery).
#   docker build -t mdstream .
#   docker run --rm mdstream stream --source synthetic --duration 30 --sink duckdb --duckdb /data/mdstream.duckdb
# Credentials are never baked in: on Cloud Run / GKE use the workload's service account (ADC); locally
# mount an ADC file and set GOOGLE_APPLICATION_CREDENTIALS (see docker-compose.yml).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder: every dependency as a wheel, plus mdstream's own wheel -------------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
# A compiler only for the rare dependency without a manylinux wheel; it never reaches the runtime image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY mdstream ./mdstream
COPY sql ./sql
RUN pip wheel --wheel-dir /wheels .

# ---- runtime: slim, no compiler, no sources, non-root ---------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    METRICS_PORT=9464 MDSTREAM_METRICS_HOST=0.0.0.0 \
    MDSTREAM_DUCKDB=/data/mdstream.duckdb MDSTREAM_BQ_SPOOL_DIR=/spool/bigquery \
    MDSTREAM_CACHE_DIR=/data/datasets
COPY --from=builder /wheels /wheels
RUN pip install --no-index --find-links=/wheels mdstream \
 && rm -rf /wheels \
 && groupadd --system --gid 10001 mdstream \
 && useradd --system --uid 10001 --gid mdstream --home-dir /home/mdstream --create-home --shell /usr/sbin/nologin mdstream \
 && mkdir -p /data /spool \
 && chown mdstream:mdstream /data /spool
USER 10001:10001
WORKDIR /home/mdstream
VOLUME ["/data", "/spool"]
EXPOSE 9464
# Only the stream job serves /healthz (with --metrics-port $METRICS_PORT); slim images have no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${METRICS_PORT}/healthz', timeout=4)" || exit 1
ENTRYPOINT ["mdstream"]
CMD ["--help"]
