"""Tardis `trades` dataset downloads through the tardis-dev client, with failures mapped to DownloadError."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import re
import threading
import time
import urllib.error
import urllib.parse
from collections.abc import Callable, Sequence
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
DEFAULT_TIMEOUT_S = 60.0  # seconds without a downloaded byte before giving up (offline, endpoint down)
_POLL_S = 0.2
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
    timeout_s: float = DEFAULT_TIMEOUT_S, progress: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
) -> list[Path]:
    """Download (or find in `cache_dir`) daily trades files; paths in (symbol, date) order; to_date exclusive.
    Gives up with DownloadError after `timeout_s` seconds in which no byte arrived (tardis-dev itself retries
    for hours); `progress` hears the bytes received and each retry; `cancel` stops the download."""
    days = days_between(from_date, to_date)
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV, "")
    url = (endpoint or os.environ.get(ENDPOINT_ENV) or DEFAULT_DATASETS_ENDPOINT).rstrip("/")
    paths = [cache_path(cache_dir, exchange, symbol, day) for symbol in symbols for day in days]
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    job = download_datasets_async(
        exchange, [DATA_TYPE], list(symbols), from_date, to_date,
        api_key=key, download_dir=str(cache_dir), endpoint=url, format=FORMAT,
        timeout=max(1, int(timeout_s + 0.999)),
    )
    retries = _LastRetry(progress)
    logger = logging.getLogger(_RETRY_LOGGER)
    level = logger.level
    logger.addHandler(retries)
    # tardis-dev reports each retry only at debug level; that message is what explains a deadline expiry.
    logger.setLevel(logging.DEBUG)
    try:
        _run(_watched(job, paths, timeout_s, progress, cancel))
    except urllib.error.HTTPError as exc:
        raise DownloadError(_http_message(exc, exchange, key)) from exc
    except _Cancelled as exc:
        raise DownloadError(f"{exchange}: download cancelled") from exc
    except TimeoutError as exc:
        missing = [p.name for p in paths if not p.exists()]
        raise DownloadError(
            f"{exchange}: no data from {url} for {timeout_s:g}s; still missing {', '.join(missing)}"
            f"{'; last error: ' + retries.last if retries.last else ''} (check the network, or raise --download-timeout)"
        ) from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise DownloadError(f"{exchange} {', '.join(symbols)} {from_date}..{to_date}: network error from {url}: {exc}") from exc
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    finally:
        logger.removeHandler(retries)
        logger.setLevel(level)
    return paths


class _Cancelled(Exception):
    """The caller asked the download to stop."""


def _received(paths: list[Path]) -> int:
    """Bytes on disk of the wanted files, finished or still arriving (tardis-dev's `<name><hex>.unconfirmed`)."""
    total = 0
    for path in paths:
        for candidate in [path, *path.parent.glob(f"{glob_escape(path.name)}*.unconfirmed")]:
            try:
                total += candidate.stat().st_size
            except OSError:
                pass  # renamed or removed between the listing and the stat
    return total


def glob_escape(name: str) -> str:
    """`name` with glob wildcards escaped."""
    return re.sub(r"([*?\[])", r"[\1]", name)


async def _watched(job, paths: list[Path], timeout_s: float, progress, cancel: threading.Event | None) -> None:
    """Run `job` while watching the files grow: TimeoutError after `timeout_s` seconds without a new byte."""
    task = asyncio.ensure_future(job)
    size, changed = _received(paths), time.monotonic()
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=_POLL_S)
            if cancel is not None and cancel.is_set():
                raise _Cancelled()
            now, current = time.monotonic(), _received(paths)
            if current != size:
                size, changed = current, now
                if progress:
                    progress(f"{current / 1e6:,.1f} MB received")
            elif now - changed > timeout_s and not task.done():
                raise TimeoutError()
        task.result()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


class _LastRetry(logging.Handler):
    """Keeps the text of the last retry tardis-dev logged, and tells `progress` about it."""

    def __init__(self, progress: Callable[[str], None] | None = None) -> None:
        super().__init__(logging.DEBUG)
        self.last = ""
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        """Remember the message (and show it: a retrying download is not a hung one)."""
        self.last = record.getMessage()
        if self.progress and "retrying" in self.last:
            self.progress(self.last)


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
