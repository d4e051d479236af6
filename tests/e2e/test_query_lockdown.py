"""`mdstream query`: read-only and locked down as a process (no other file, no network, no extension, no
configuration change), every column type rendered in every format, "no data yet" on an empty file, and the one
--duckdb option (env MDSTREAM_DUCKDB) honoured by query and verify as by backfill."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest
from click.testing import CliRunner

from mdstream.cli import main
from mdstream.sinks.duckdb import DuckDBSink
from support.day_files import day_file


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """A DuckDB file with one backfilled day (ticks stored)."""
    folder = tmp_path_factory.mktemp("q")
    path = folder / "m.duckdb"
    result = CliRunner().invoke(main, ["backfill", "--input", str(day_file(folder, date(2024, 1, 1), n=2_000)),
                                       "--store-ticks", "--quiet", "--timeframes", "1m,1d", "--duckdb", str(path)])
    assert result.exit_code == 0, result.output
    return path


def query(db, sql: str, *flags: str, env: dict | None = None):
    """Run `mdstream query` in-process."""
    return CliRunner().invoke(main, ["query", "--duckdb", str(db), *flags, sql], env=env)


@pytest.mark.parametrize("sql", [
    "COPY (SELECT * FROM candles) TO '{out}/leak.csv'",
    "COPY candles TO '{out}/leak.parquet' (FORMAT parquet)",
    "EXPORT DATABASE '{out}/export'",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM glob('/etc/*')",
    "ATTACH '{out}/other.duckdb' AS other",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SELECT * FROM read_parquet('https://127.0.0.1:9/x.parquet')",
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "CREATE TABLE stolen AS SELECT 1",
    "DELETE FROM candles",
])
def test_query_cannot_reach_outside_the_file_or_change_it(db, tmp_path, sql):
    result = query(db, sql.format(out=tmp_path))
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    assert list(tmp_path.iterdir()) == []  # nothing was written anywhere
    assert json.loads(query(db, "SELECT count(*) AS n FROM candles", "--format", "json").output)[0]["n"] > 0


ODD_TYPES = ("SELECT {'a': 1, 'b': 'x'} AS s, [1, 2] AS l, '\\xAA\\x00'::BLOB AS b, map([1], [2]) AS m, "
             "[1, 2]::INTEGER[2] AS arr, [{'x': '\\x01'::BLOB}] AS lb, INTERVAL 1 DAY AS i, 1::HUGEINT AS h, "
             "union_value(k := 1) AS u, 1.5::DECIMAL(4, 2) AS d, TIME '01:02:03' AS t, NULL AS n, 'é,\"x\"' AS v")


def test_every_column_type_renders_in_every_format(db, tmp_path):
    table = query(db, ODD_TYPES)
    assert table.exit_code == 0, table.output
    text = query(db, ODD_TYPES, "--format", "csv")
    assert text.exit_code == 0, text.output
    row = next(csv.DictReader(io.StringIO(text.output)))
    assert row["b"] == "aa00" and json.loads(row["s"]) == {"a": 1, "b": "x"} and json.loads(row["l"]) == [1, 2]
    assert json.loads(row["m"]) == {"1": 2} and json.loads(row["lb"]) == [{"x": "01"}] and row["v"] == 'é,"x"'
    records = query(db, ODD_TYPES, "--format", "json")
    assert records.exit_code == 0, records.output
    record = json.loads(records.output)[0]
    assert record["s"] == {"a": 1, "b": "x"} and record["b"] == "aa00" and record["arr"] == [1, 2]
    out = tmp_path / "odd.parquet"
    assert query(db, ODD_TYPES, "--format", "parquet", "--output", str(out)).exit_code == 0 and out.stat().st_size


def test_an_empty_file_says_no_data_yet(tmp_path):
    path = tmp_path / "empty.duckdb"
    DuckDBSink(path).close()  # the schema, no rows
    result = query(path, "SELECT * FROM candles_1m")
    assert result.exit_code == 1 and "no data yet" in result.output, result.output


def test_one_duckdb_option_honoured_by_every_command(db, tmp_path):
    env = {"MDSTREAM_DUCKDB": str(db)}
    runner = CliRunner()
    got = runner.invoke(main, ["query", "--format", "json", "SELECT count(*) AS n FROM ticks"], env=env)
    assert got.exit_code == 0 and json.loads(got.output)[0]["n"] == 2_000, got.output
    verified = runner.invoke(main, ["verify"], env=env)
    assert verified.exit_code == 0 and "0 mismatches" in verified.output, verified.output
    for command in ("backfill", "stream", "demo", "query", "verify", "chart"):
        assert "MDSTREAM_DUCKDB" in runner.invoke(main, [command, "--help"]).output, command
