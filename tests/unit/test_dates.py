"""Days and times are parsed one way: the same forms accepted and the same one-line error everywhere."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from click.testing import CliRunner

from mdstream.cli import main
from mdstream.contract.dates import parse_day, parse_time
from mdstream.contract.errors import ConfigError
from mdstream.contract.timeframes import day_bounds
from mdstream.ops.serve import parse_time as serve_time

UTC = timezone.utc


def test_days():
    """'YYYY-MM-DD' and dates are days; other spellings name the field and the form."""
    assert parse_day("2024-02-29") == date(2024, 2, 29)
    assert parse_day(date(2024, 1, 1)) == date(2024, 1, 1)
    for bad in ("2024-02-30", "20240101", "2024-W01-1", "yesterday", "2024-01-01T00:00", ""):
        with pytest.raises(ConfigError, match=r"is not a day for --from: expected YYYY-MM-DD"):
            parse_day(bad, "--from")
    assert day_bounds("2024-01-01")[0] == datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(ConfigError, match=r"'20240101' is not a day for --to"):
        day_bounds("20240101", "--to")


def test_times():
    """ISO 8601 (naive = UTC, offsets converted), a bare day = its midnight; epoch seconds only where allowed."""
    assert parse_time("2024-01-01") == datetime(2024, 1, 1, tzinfo=UTC)
    assert parse_time("2024-01-01T12:30") == datetime(2024, 1, 1, 12, 30, tzinfo=UTC)
    assert parse_time("2024-01-01 12:30:05.5") == datetime(2024, 1, 1, 12, 30, 5, 500000, tzinfo=UTC)
    assert parse_time("2024-01-01T12:00:00+02:00") == datetime(2024, 1, 1, 10, tzinfo=UTC)
    assert parse_time("2024-01-01T12:00:00Z") == datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert parse_time(datetime(2024, 1, 1)) == datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(ConfigError, match=r"'1704067200' is not a time for from: expected YYYY-MM-DD"):
        parse_time("1704067200", "from")
    assert parse_time("1704067200", "from", epoch_seconds=True) == datetime(2024, 1, 1, tzinfo=UTC)
    assert serve_time("1704067200", "from") == datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(ConfigError, match=r"'yesterday' is not a time for to: expected epoch seconds or YYYY"):
        serve_time("yesterday", "to")


@pytest.mark.parametrize(("args", "option"), [
    (["backfill", "--exchange", "binance", "--symbols", "BTCUSDT", "--from", "2024/01/01", "--to", "2024-01-02"],
     "--from"),
    (["chart", "--from", "01.01.2024"], "--from"),
])
def test_cli_refuses_a_bad_date_naming_the_option(args, option, tmp_path):
    """Every command that takes a day or time says which option was wrong and the form it expects, exit 2 or 1."""
    result = CliRunner().invoke(main, [*args, "--duckdb", str(tmp_path / "x.duckdb")])
    assert result.exit_code in (1, 2), result.output
    assert f"is not a day for {option}" in result.output or f"is not a time for {option}" in result.output
    assert "expected YYYY-MM-DD" in result.output
    assert "Traceback" not in result.output
