"""Downloads through the real tardis-dev client against a local server in Tardis's URL layout."""

from __future__ import annotations

import gzip
import socket
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from mdstream.contract.errors import ConfigError, DownloadError
from mdstream.inputs.tardis import download_trades, read_trades
from support.tardis_http import TardisServer

NOW = datetime(2024, 1, 1, tzinfo=timezone.utc)
TRADES = "tardis/binance-futures_trades_2020-02-22_BTCUSDT.first9999rows.csv"
EXCHANGE = "binance-futures"
DAY = date(2020, 2, 22)
KEY = "test-key"


@pytest.fixture
def day_gz(real_data: Path) -> bytes:
    """One real day of trades, gzipped on the fly."""
    return gzip.compress((real_data / TRADES).read_bytes())


def test_download_with_key_lands_in_cache_and_reads_back(tardis_server: TardisServer, day_gz: bytes, tmp_path: Path) -> None:
    tardis_server.add(EXCHANGE, "BTCUSDT", DAY, day_gz)
    paths = download_trades(EXCHANGE, ["BTCUSDT"], "2020-02-22", "2020-02-23",
                            cache_dir=tmp_path, api_key=KEY, endpoint=tardis_server.endpoint)
    assert paths == [tmp_path / "binance-futures_trades_2020-02-22_BTCUSDT.csv.gz"]
    assert paths[0].read_bytes() == day_gz
    assert [auth for _, _, auth in tardis_server.requests] == [f"Bearer {KEY}"]
    read = read_trades(paths[0], now=NOW)
    assert read.ticks.height == 9_999 and read.complete


def test_cached_file_is_not_downloaded_again(tardis_server: TardisServer, day_gz: bytes, tmp_path: Path) -> None:
    path = tardis_server.add(EXCHANGE, "BTCUSDT", DAY, day_gz)
    for _ in range(2):
        paths = download_trades(EXCHANGE, ["BTCUSDT"], "2020-02-22", "2020-02-23",
                                cache_dir=tmp_path, api_key=KEY, endpoint=tardis_server.endpoint)
    assert tardis_server.hits(path) == 1
    assert paths[0].read_bytes() == day_gz


def test_key_and_endpoint_from_environment(tardis_server: TardisServer, day_gz: bytes, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    tardis_server.add(EXCHANGE, "BTCUSDT", DAY, day_gz)
    monkeypatch.setenv("TARDIS_API_KEY", KEY)
    monkeypatch.setenv("MDSTREAM_TARDIS_ENDPOINT", tardis_server.endpoint)
    paths = download_trades(EXCHANGE, ["BTCUSDT"], "2020-02-22", "2020-02-23", cache_dir=tmp_path)
    assert paths[0].read_bytes() == day_gz
    assert tardis_server.requests[0][2] == f"Bearer {KEY}"


def test_paths_in_symbol_then_date_order(tardis_server: TardisServer, tmp_path: Path) -> None:
    bodies = {}
    for symbol in ("BTCUSDT", "ETHUSDT"):
        for day in (date(2020, 2, 22), date(2020, 2, 23), date(2020, 2, 24)):
            bodies[(symbol, day)] = gzip.compress(f"{symbol} {day}\n".encode())
            tardis_server.add(EXCHANGE, symbol, day, bodies[(symbol, day)])
    # Lower case is what a user may type; tardis-dev upper-cases it in URLs and file names.
    paths = download_trades(EXCHANGE, ["btcusdt", "ETHUSDT"], "2020-02-22", "2020-02-25",
                            cache_dir=tmp_path, api_key=KEY, endpoint=tardis_server.endpoint)
    expected = [(s, d) for s in ("BTCUSDT", "ETHUSDT") for d in (date(2020, 2, 22), date(2020, 2, 23), date(2020, 2, 24))]
    assert [p.name for p in paths] == [f"{EXCHANGE}_trades_{d:%Y-%m-%d}_{s}.csv.gz" for s, d in expected]
    assert [p.read_bytes() for p in paths] == [bodies[k] for k in expected]


def test_401_without_key_names_the_day(tardis_server: TardisServer, day_gz: bytes, tmp_path: Path) -> None:
    path = tardis_server.add(EXCHANGE, "BTCUSDT", DAY, day_gz)
    with pytest.raises(DownloadError) as caught:
        download_trades(EXCHANGE, ["BTCUSDT"], "2020-02-22", "2020-02-23",
                        cache_dir=tmp_path, endpoint=tardis_server.endpoint)
    message = str(caught.value)
    assert "401" in message and "binance-futures BTCUSDT 2020-02-22" in message and "TARDIS_API_KEY" in message
    assert tardis_server.hits(path) == 1  # 401 is not retried
    assert tardis_server.requests[0][2] is None


def test_404_is_a_download_error(tardis_server: TardisServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"binance-futures NOSUCH 2020-02-22: HTTP 404"):
        download_trades(EXCHANGE, ["NOSUCH"], "2020-02-22", "2020-02-23",
                        cache_dir=tmp_path, api_key=KEY, endpoint=tardis_server.endpoint)
    assert len(tardis_server.requests) == 1
    assert not list(tmp_path.iterdir())


def test_500_once_is_retried_then_succeeds(tardis_server: TardisServer, day_gz: bytes, tmp_path: Path) -> None:
    path = tardis_server.add(EXCHANGE, "BTCUSDT", DAY, day_gz)
    tardis_server.fail(path, 500)
    paths = download_trades(EXCHANGE, ["BTCUSDT"], "2020-02-22", "2020-02-23",
                            cache_dir=tmp_path, api_key=KEY, endpoint=tardis_server.endpoint)
    assert paths[0].read_bytes() == day_gz
    assert [query for _, query, _ in tardis_server.requests] == ["", "retryAttempt=1"]


def test_persistent_500_is_bounded_by_the_deadline(tardis_server: TardisServer, day_gz: bytes, tmp_path: Path) -> None:
    path = tardis_server.add(EXCHANGE, "BTCUSDT", DAY, day_gz)
    tardis_server.fail(path, *[500] * 30)
    with pytest.raises(DownloadError) as caught:
        download_trades(EXCHANGE, ["BTCUSDT"], "2020-02-22", "2020-02-23", cache_dir=tmp_path,
                        api_key=KEY, endpoint=tardis_server.endpoint, timeout_s=1.0)
    message = str(caught.value)
    assert "binance-futures_trades_2020-02-22_BTCUSDT.csv.gz" in message and "500" in message
    assert tardis_server.hits(path) == 1
    assert not list(tmp_path.iterdir())


def test_unreachable_endpoint_is_a_download_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on that port any more: every attempt is refused.
    with pytest.raises(DownloadError, match=r"still missing binance-futures_trades_2020-02-22_BTCUSDT\.csv\.gz"):
        download_trades(EXCHANGE, ["BTCUSDT"], "2020-02-22", "2020-02-23", cache_dir=tmp_path,
                        api_key=KEY, endpoint=f"http://127.0.0.1:{port}/v1", timeout_s=1.0)


@pytest.mark.parametrize("dates", [("2020-02-23", "2020-02-22"), ("2020-02-22", "2020-02-22"), ("yesterday", "2020-02-22")])
def test_bad_date_range_is_a_config_error(dates: tuple[str, str], tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        download_trades(EXCHANGE, ["BTCUSDT"], *dates, cache_dir=tmp_path, api_key=KEY, endpoint="http://127.0.0.1:9/v1")
