#!/usr/bin/env bash
# Print a Looker Studio Linking API URL that creates a report with the mdstream views as its data sources.
#   dashboards/looker-studio/report-url.sh PROJECT [DATASET] [CANDLES_VIEW]
#   e.g. dashboards/looker-studio/report-url.sh my-project mdstream candles_1m
# Open the URL while signed in to Google, then follow dashboards/README.md to place the charts.
set -euo pipefail
PROJECT="${1:?usage: $0 PROJECT [DATASET] [CANDLES_VIEW]}"
DATASET="${2:-mdstream}"
CANDLES="${3:-candles_1m}"
# alias:view pairs; the first is the candles view, the others are the data-quality views.
SOURCES=("candles:$CANDLES" "quality:data_quality" "latency:ingest_latency" "quarantine:quarantine_summary" "daily:daily_summary")
url="https://lookerstudio.google.com/reporting/create?c.mode=edit&r.reportName=mdstream%20($DATASET)"
for pair in "${SOURCES[@]}"; do
  alias="${pair%%:*}" view="${pair#*:}"
  url+="&ds.$alias.connector=bigQuery&ds.$alias.type=TABLE&ds.$alias.projectId=$PROJECT&ds.$alias.billingProjectId=$PROJECT"
  url+="&ds.$alias.datasetId=$DATASET&ds.$alias.tableId=$view&ds.$alias.datasourceName=mdstream%20$view"
done
echo "$url"
