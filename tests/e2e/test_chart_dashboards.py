"""The shipped BigQuery dashboards: the Grafana JSON parses, and every view and column they query exists in
sql/bigquery/views.sql (column names taken from the same views in DuckDB, which keep BigQuery's names)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from mdstream.contract import timeframes
from mdstream.sinks import base, sqlfiles
from mdstream.sinks.duckdb import DuckDBSink

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "dashboards" / "grafana" / "mdstream-bigquery.json"
LOOKER = REPO / "dashboards" / "looker-studio" / "report-url.sh"
TABLE_REF = re.compile(r"`\$\{project\}\.\$\{dataset\}\.(\w+)`")
SQL_WORDS = {"select", "from", "where", "and", "or", "not", "as", "order", "by", "group", "asc", "desc", "limit",
             "distinct", "null", "is", "in", "on", "case", "when", "then", "else", "end", "true", "false", "interval"}


def bigquery_views() -> set[str]:
    return set(re.findall(r"CREATE OR REPLACE VIEW `\$\{project\}\.\$\{dataset\}\.(\w+)`", sqlfiles.read("bigquery/views.sql")))


@pytest.fixture(scope="module")
def columns(tmp_path_factory) -> dict[str, set[str]]:
    """Columns of every table and view, from a DuckDB file with the mdstream schema."""
    sink = DuckDBSink(tmp_path_factory.mktemp("schema") / "schema.duckdb")
    try:
        names = [row[0] for row in sink.con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        return {name: {row[0] for row in sink.con.execute(f'DESCRIBE "{name}"').fetchall()} for name in names}
    finally:
        sink.close()


def identifiers(sql: str) -> tuple[set[str], set[str]]:
    """(tables, column-like identifiers) of a dashboard query: string literals, Grafana macros and variables,
    function names and aliases are not columns."""
    tables = set(TABLE_REF.findall(sql))
    text = TABLE_REF.sub(" ", sql)
    text = re.sub(r"'[^']*'", " ", text)
    text = re.sub(r"\$__\w+|\$\{\w+\}|\$\w+", " ", text)
    text = text.replace("`", " ")
    aliases = {m.lower() for m in re.findall(r"\bAS\s+(\w+)", text, flags=re.IGNORECASE)}
    functions = {m.lower() for m in re.findall(r"\b(\w+)\s*\(", text)}
    words = {w.lower() for w in re.findall(r"\b[A-Za-z_]\w*\b", text)}
    return tables, words - aliases - functions - SQL_WORDS


def grafana_queries(dashboard: dict) -> list[str]:
    """Every SQL text of the dashboard: panel targets, variable queries and annotations."""
    found = [t["rawSql"] for p in dashboard["panels"] for t in p["targets"]]
    found += [v["query"]["rawSql"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    found += [a["target"]["rawSql"] for a in dashboard["annotations"]["list"]]
    return found


def test_grafana_dashboard_parses_and_queries_only_real_views_and_columns(columns):
    dashboard = json.loads(GRAFANA.read_text())
    assert dashboard["__inputs"][0]["pluginId"] == "grafana-bigquery-datasource"
    queries = grafana_queries(dashboard)
    assert len(queries) == len(dashboard["panels"]) + 3 and {p["type"] for p in dashboard["panels"]} >= {"candlestick", "timeseries", "table"}
    views, tables = bigquery_views(), set(base.SCHEMAS)
    used = set()
    for sql in queries:
        refs, words = identifiers(sql)
        assert refs, f"no mdstream view in {sql}"
        unknown_views = refs - views - tables
        assert not unknown_views, f"{unknown_views} not in sql/bigquery/views.sql: {sql}"
        known = set().union(*(columns[r] for r in refs))
        assert words <= known, f"columns {words - known} not in {refs}: {sql}"
        used |= refs
    assert used >= {"candles_latest", "data_quality", "ingest_latency", "quarantine_summary", "features", "daily_summary"}
    timeframe = next(v for v in dashboard["templating"]["list"] if v["name"] == "timeframe")
    assert [o["value"] for o in timeframe["options"]] == list(timeframes.ALL_TIMEFRAMES) == timeframe["query"].split(",")


def test_identifier_check_catches_a_wrong_column(columns):
    tables, words = identifiers("SELECT timestamp_in AS time, clsoe FROM `${project}.${dataset}.candles_latest` "
                                "WHERE symbol = '${symbol}' AND $__timeFilter(timestamp_in)")
    assert tables == {"candles_latest"} and words - columns["candles_latest"] == {"clsoe"}


def test_looker_studio_link_names_real_views():
    url = subprocess.run(["bash", str(LOOKER), "my-project", "md", "candles_5m"], capture_output=True, text=True,
                         check=True).stdout.strip()
    parsed = urlparse(url)
    assert parsed.scheme == "https" and parsed.path == "/reporting/create"
    query = parse_qs(parsed.query)
    table_ids = [v[0] for k, v in query.items() if k.endswith(".tableId")]
    assert table_ids and set(table_ids) <= bigquery_views() and "candles_5m" in table_ids
    assert {v[0] for k, v in query.items() if k.endswith(".connector")} == {"bigQuery"}
    assert {v[0] for k, v in query.items() if k.endswith(".datasetId")} == {"md"}
    assert {v[0] for k, v in query.items() if k.endswith(".projectId")} == {"my-project"}
