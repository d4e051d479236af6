"""Tardis `trades` dataset downloads through the tardis-dev client, with failures mapped to DownloadError."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import re
import urllib.error
import urllib.parse
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
import dateutil.parser
from tardis_dev import (
    DEFAULT_DATASETS_ENDPOINT,
    default_file_name,
    download_datasets_async,
)

from ..contract.errors import ConfigError, DownloadError

DATA_TYPE = "trades"
FORMAT = "csv"
API_KEY_ENV = "TARDIS_API_KEY"
ENDPOINT_ENV = "MDSTREAM_TARDIS_ENDPOINT"
DEFAULT_DEADLINE_S = 3600.0
# tardis-dev's URL layout: {endpoint}/{exchange}/{data_type}/{YYYY/MM/DD}/{SYMBOL}.csv.gz (+ ?retryAttempt=n).
_URL = re.compile(r"/([^/]+)/([^/]+)/(\d{4})/(\d{2})/(\d{2})/([^/?]+)\.csv\.gz")
_RETRY_LOGGER = "tardis_dev._http"


def days_between(from_date: str, to_date: str) -> list[datetime]:
    """Days from `from_date` (inclusive) to `to_date` (exclusive), parsed as tardis-dev parses them."""
    try:
        start, end = dateutil.parser.isoparse(from_date), dateutil.parser.isoparse(to_date)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"dates must be ISO 8601 (YYYY-MM-DD): got {from_date!r} and {to_date!r}") from exc
    count = int((end - start).total_seconds() // timedelta(days=1).total_seconds())
    if count < 1:
        raise ConfigError(f"to_date {to_date} must be at least one day after from_date {from_date} (to_date is exclusive)")
    return [start + timedelta(days=n) for n in range(count)]


def tardis_symbol(symbol: str) -> str:
    """The symbol as tardis-dev writes it into URLs and file names (upper case, ':' and '/' as '-')."""
    return symbol.replace(":", "-").replace("/", "-").upper()


def cache_path(cache_dir: Path, exchange: str, symbol: str, day: datetime) -> Path:
    """Where tardis-dev stores the trades file of (exchange, symbol, day) under `cache_dir`."""
    return Path(cache_dir) / default_file_name(exchange, DATA_TYPE, day, tardis_symbol(symbol), FORMAT)


def download_trades(
    exchange: str, symbols: Sequence[str], from_date: str, to_date: str, *,
    cache_dir: Path, api_key: str | None = None, endpoint: str | None = None,
    deadline_s: float = DEFAULT_DEADLINE_S,
) -> list[Path]:
    """Download (or find in `cache_dir`) daily trades files; paths in (symbol, date) order; to_date exclusive."""
    days = days_between(from_date, to_date)
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV, "")
    url = (endpoint or os.environ.get(ENDPOINT_ENV) or DEFAULT_DATASETS_ENDPOINT).rstrip("/")
    paths = [cache_path(cache_dir, exchange, symbol, day) for symbol in symbols for day in days]
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    job = download_datasets_async(
        exchange, [DATA_TYPE], list(symbols), from_date, to_date,
        api_key=key, download_dir=str(cache_dir), endpoint=url, format=FORMAT,
    )
    retries = _LastRetry()
    logger = logging.getLogger(_RETRY_LOGGER)
    level = logger.level
    logger.addHandler(retries)
    # tardis-dev reports each retry only at debug level; that message is what explains a deadline expiry.
    logger.setLevel(logging.DEBUG)
    try:
        _run(asyncio.wait_for(job, timeout=deadline_s))
    except urllib.error.HTTPError as exc:
        raise DownloadError(_http_message(exc, exchange, key)) from exc
    except (asyncio.TimeoutError, TimeoutError) as exc:
        missing = [p.name for p in paths if not p.exists()]
        raise DownloadError(
            f"{exchange}: no complete download within {deadline_s:g}s from {url}; still missing {', '.join(missing)}"
            f"{'; last error: ' + retries.last if retries.last else ''}"
        ) from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise DownloadError(f"{exchange} {', '.join(symbols)} {from_date}..{to_date}: network error from {url}: {exc}") from exc
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    finally:
        logger.removeHandler(retries)
        logger.setLevel(level)
    return paths


class _LastRetry(logging.Handler):
    """Keeps the text of the last retry tardis-dev logged."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        """Remember the message."""
        self.last = record.getMessage()


def _run(coro) -> None:
    """Run `coro` to completion, in a worker thread when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)
        return
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()


def _http_message(exc: urllib.error.HTTPError, exchange: str, key: str) -> str:
    """A message naming exchange, symbol and date of the failed file, and what the status means."""
    found = _URL.search(urllib.parse.urlsplit(exc.filename or "").path)
    if found:
        ex, _, year, month, day, symbol = found.groups()
        what = f"{ex} {urllib.parse.unquote(symbol)} {year}-{month}-{day}"
    else:
        what = exchange
    url = (exc.filename or "").split("?")[0]
    if exc.code == 401:
        hint = (
            f"no API key (pass api_key or set {API_KEY_ENV}); without one only the first day of each month is free"
            if not key else "the API key was refused or does not cover this day"
        )
        return f"{what}: HTTP 401 unauthorized at {url}: {hint}"
    if exc.code == 403:
        return f"{what}: HTTP 403 forbidden at {url}: the API key does not cover this exchange or day"
    if exc.code == 404:
        return f"{what}: HTTP 404 not found at {url}: no trades dataset for that exchange, symbol and day"
    detail = (exc.msg or "").strip()[:200]
    return f"{what}: HTTP {exc.code} at {url}{': ' + detail if detail else ''}"
