"""Sharding: every key in exactly one shard, stable across processes, roughly balanced."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mdstream.contract.errors import ConfigError
from mdstream.jobs.shard import parse_shard, select_symbols, select_tasks, shard_of

symbols = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FFF), min_size=1, max_size=16)


@settings(max_examples=60, deadline=None)
@given(st.lists(symbols, min_size=1, max_size=40, unique=True), st.integers(min_value=1, max_value=12))
def test_every_symbol_in_exactly_one_shard(keys, count):
    owners = Counter()
    for index in range(count):
        for key in select_symbols(keys, index, count):
            owners[key] += 1
    assert set(owners) == set(keys)
    assert all(n == 1 for n in owners.values())


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.dates(min_value=date(2019, 1, 1), max_value=date(2030, 1, 1)), symbols), min_size=1, max_size=40),
    st.integers(min_value=1, max_value=9),
)
def test_every_task_in_exactly_one_shard(tasks, count):
    picked = [task for index in range(count) for task in select_tasks(tasks, index, count)]
    assert sorted(picked) == sorted(set(tasks))


@settings(max_examples=60, deadline=None)
@given(symbols, st.integers(min_value=1, max_value=1000))
def test_shard_in_range_and_deterministic(key, count):
    first = shard_of(key, count)
    assert 0 <= first < count
    assert shard_of(key, count) == first


def test_known_assignments_are_pinned():
    # Pinned values: a change here would move data between replicas after an upgrade.
    assert [shard_of(k, 8) for k in ("BTCUSDT", "ETHUSDT", "SOLUSDT")] == [2, 2, 6]
    assert shard_of("2024-01-01/BTCUSDT", 3) == 1


def test_stable_across_processes_with_different_hash_seeds():
    code = "from mdstream.jobs.shard import shard_of; print([shard_of(f'SYM{i}', 7) for i in range(50)])"
    outputs = set()
    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        outputs.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout)
    assert outputs == {str([shard_of(f"SYM{i}", 7) for i in range(50)]) + "\n"}


@pytest.mark.parametrize("count", [2, 4, 8, 16])
def test_roughly_balanced(count):
    start = date(2024, 1, 1)
    tasks = [(start + timedelta(days=d), f"SYM{s}USDT") for d in range(365) for s in range(20)]
    sizes = [len(select_tasks(tasks, index, count)) for index in range(count)]
    expected = len(tasks) / count
    assert sum(sizes) == len(tasks)
    assert max(sizes) < expected * 1.1 and min(sizes) > expected * 0.9


def test_order_preserved_and_duplicates_dropped():
    keys = [f"S{i}" for i in range(30)]
    chosen = select_symbols(keys + keys, 0, 3)
    assert chosen == [k for k in keys if shard_of(k, 3) == 0]


@pytest.mark.parametrize("text,expected", [("0/1", (0, 1)), ("2/8", (2, 8)), (" 7 / 8 ", (7, 8))])
def test_parse_shard(text, expected):
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text", ["8/8", "-1/4", "0/0", "1/-2", "a/b", "3", "", "1/2/3"])
def test_parse_shard_rejects(text):
    with pytest.raises(ConfigError):
        parse_shard(text)


def test_single_shard_owns_everything():
    assert select_symbols(["A", "B", "C"], 0, 1) == ["A", "B", "C"]
    with pytest.raises(ConfigError):
        select_symbols(["A"], 1, 1)
