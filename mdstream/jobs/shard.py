"""Stable sharding of symbols and (date, symbol) backfill tasks across replicas or job indexes."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from datetime import date

from ..contract.errors import ConfigError

_SHARD_RE = re.compile(r"^\s*(-?\d+)\s*/\s*(-?\d+)\s*$")


def shard_of(key: str, count: int) -> int:
    """Shard of `key` in 0..count-1: first 8 bytes of blake2b(key, utf-8) as big-endian int, mod count."""
    if count < 1:
        raise ConfigError(f"shard count must be at least 1, got {count}")
    # blake2b is fixed by its spec, so the assignment is identical across processes, restarts and
    # Python versions (unlike hash(), which is salted per process).
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


def parse_shard(text: str) -> tuple[int, int]:
    """Parse "INDEX/COUNT" (e.g. "2/8") into (index, count); ConfigError unless 0 <= index < count."""
    match = _SHARD_RE.match(text or "")
    if not match:
        raise ConfigError(f"--shard must look like INDEX/COUNT (e.g. 0/4), got {text!r}")
    index, count = int(match.group(1)), int(match.group(2))
    validate(index, count)
    return index, count


def validate(index: int, count: int) -> None:
    """Raise ConfigError unless count >= 1 and 0 <= index <= count - 1."""
    if count < 1:
        raise ConfigError(f"shard count must be at least 1, got {count}")
    if not 0 <= index < count:
        raise ConfigError(f"shard index must be in 0..{count - 1}, got {index}")


def task_key(day: date | str, symbol: str) -> str:
    """Key of one backfill task: "<ISO date>/<symbol>"."""
    day_text = day.isoformat() if isinstance(day, date) else str(day)
    return f"{day_text}/{symbol}"


def select_symbols(symbols: Iterable[str], index: int, count: int) -> list[str]:
    """The symbols shard `index` of `count` owns, in their given order (duplicates dropped)."""
    validate(index, count)
    seen: set[str] = set()
    chosen: list[str] = []
    for symbol in symbols:
        if symbol not in seen and shard_of(symbol, count) == index:
            chosen.append(symbol)
        seen.add(symbol)
    return chosen


def select_tasks(tasks: Sequence[tuple[date, str]], index: int, count: int) -> list[tuple[date, str]]:
    """The (date, symbol) tasks shard `index` of `count` owns, in their given order (duplicates dropped)."""
    validate(index, count)
    seen: set[tuple[date, str]] = set()
    chosen: list[tuple[date, str]] = []
    for day, symbol in tasks:
        if (day, symbol) not in seen and shard_of(task_key(day, symbol), count) == index:
            chosen.append((day, symbol))
        seen.add((day, symbol))
    return chosen
