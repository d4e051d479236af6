"""Bad input: every kind of broken row is quarantined with its line, field and reason; valid ticks survive."""

from __future__ import annotations

import gzip
import zlib
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mdstream.contract import columns as c
from mdstream.contract import schema
from mdstream.contract.errors import InputError
from mdstream.inputs.tardis import _read_as_text, _read_tolerant, read_trades
from mdstream.kernel import validate as v
from mdstream.kernel.validate import validate_ticks

NOW = datetime(2024, 1, 1, tzinfo=timezone.utc)
HEADER = ",".join(c.TICK_COLUMNS)
TRADES = "tardis/binance-futures_trades_2020-02-22_BTCUSDT.first9999rows.csv"
TS = 1582329602111000


def row(n: int, **fields: str) -> str:
    """A valid trade line number `n` (id 1000+n), with `fields` overriding columns."""
    base = {
        c.EXCHANGE: "binance-futures", c.SYMBOL: "BTCUSDT", c.TIMESTAMP: str(TS + n * 1000),
        c.LOCAL_TIMESTAMP: str(TS + n * 1000 + 300), c.ID: str(1000 + n), c.SIDE: "buy" if n % 2 else "sell",
        c.PRICE: f"{9000 + n}.5", c.AMOUNT: "0.25",
    }
    base.update(fields)
    return ",".join(base[name] for name in c.TICK_COLUMNS)


def write(tmp_path: Path, lines: list[str], name: str = "t.csv", header: str = HEADER) -> Path:
    """A CSV with the header and `lines`."""
    path = tmp_path / name
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def single_fault(tmp_path: Path, bad: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Read [valid, bad, valid] and return (ticks, quarantine)."""
    read = read_trades(write(tmp_path, [row(1), bad, row(3)]), now=NOW)
    assert read.rows_read == 3 and read.complete
    return read.ticks, read.quarantine


CASES = [
    (row(2, **{c.PRICE: "abc"}), c.PRICE, v.R_NOT_NUMBER),
    (row(2, **{c.PRICE: "nan"}), c.PRICE, v.R_NOT_NUMBER),
    (row(2, **{c.PRICE: "inf"}), c.PRICE, v.R_NOT_NUMBER),
    (row(2, **{c.PRICE: "-5"}), c.PRICE, v.R_NOT_POSITIVE),
    (row(2, **{c.PRICE: "0"}), c.PRICE, v.R_NOT_POSITIVE),
    (row(2, **{c.PRICE: ""}), c.PRICE, v.R_MISSING),
    (row(2, **{c.AMOUNT: "-0.1"}), c.AMOUNT, v.R_NOT_POSITIVE),
    (row(2, **{c.AMOUNT: "0"}), c.AMOUNT, v.R_NOT_POSITIVE),
    (row(2, **{c.AMOUNT: "1,5"}), v.ROW_FIELD, v.R_FIELD_COUNT),
    (row(2, **{c.SIDE: "BUY"}), c.SIDE, v.R_UNKNOWN_SIDE),
    (row(2, **{c.SIDE: "hold"}), c.SIDE, v.R_UNKNOWN_SIDE),
    (row(2, **{c.SIDE: ""}), c.SIDE, v.R_MISSING),
    (row(2, **{c.TIMESTAMP: str(TS // 1000)}), c.TIMESTAMP, v.R_MILLISECONDS),
    (row(2, **{c.TIMESTAMP: str(TS * 1000)}), c.TIMESTAMP, v.R_NANOSECONDS),
    (row(2, **{c.LOCAL_TIMESTAMP: str(TS // 1000)}), c.LOCAL_TIMESTAMP, v.R_MILLISECONDS),
    (row(2, **{c.TIMESTAMP: "12ab"}), c.TIMESTAMP, v.R_NOT_INTEGER),
    (row(2, **{c.TIMESTAMP: "1582329602111000.5"}), c.TIMESTAMP, v.R_NOT_INTEGER),
    (row(2, **{c.TIMESTAMP: ""}), c.TIMESTAMP, v.R_MISSING),
    (row(2, **{c.SYMBOL: ""}), c.SYMBOL, v.R_MISSING),
    (row(2, **{c.EXCHANGE: ""}), c.EXCHANGE, v.R_MISSING),
    (row(2) + ",extra", v.ROW_FIELD, v.R_FIELD_COUNT),
    ("binance-futures,BTCUSDT,1582329602111000", v.ROW_FIELD, v.R_FIELD_COUNT),
    ('binance-futures,"BTC,USDT",1582329602113000,1582329602113300,1002,buy,9002.5,0.25', v.ROW_FIELD, v.R_FIELD_COUNT),
    ("", v.ROW_FIELD, v.R_EMPTY_LINE),
]


@pytest.mark.parametrize(("bad", "field", "reason"), CASES)
def test_bad_row_is_quarantined_with_line_field_reason(tmp_path: Path, bad: str, field: str, reason: str) -> None:
    ticks, quarantine = single_fault(tmp_path, bad)
    # The valid ticks on both sides of the bad row survive.
    assert ticks[c.ID].to_list() == ["1001", "1003"]
    assert quarantine.schema == pl.Schema(schema.QUARANTINE_SCHEMA)
    assert quarantine.select(c.Q_SOURCE, c.Q_LINE, c.Q_FIELD, c.Q_REASON, c.Q_RAW).rows() == [
        (str(tmp_path / "t.csv"), 3, field, reason, bad)
    ]
    assert quarantine[c.Q_QUARANTINED_AT].to_list() == [NOW]


def test_empty_id_is_valid_and_null(tmp_path: Path) -> None:
    ticks, quarantine = single_fault(tmp_path, row(2, **{c.ID: ""}))
    assert quarantine.height == 0
    assert ticks[c.ID].to_list() == ["1001", None, "1003"]


def test_invalid_utf8_is_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(f"{HEADER}\n{row(1)}\n".encode() + row(2).encode().replace(b"BTCUSDT", b"BTC\xffUSDT") + f"\n{row(3)}\n".encode())
    read = read_trades(path, now=NOW)
    assert read.ticks[c.ID].to_list() == ["1001", "1003"]
    assert read.quarantine.select(c.Q_LINE, c.Q_FIELD, c.Q_REASON).rows() == [(3, v.ROW_FIELD, v.R_INVALID_UTF8)]


def test_duplicate_trade_id_keeps_first(tmp_path: Path) -> None:
    lines = [row(1), row(2), row(3, **{c.ID: "1001", c.PRICE: "1.5"}), row(4), row(5, **{c.ID: "1002"})]
    read = read_trades(write(tmp_path, lines), now=NOW)
    assert read.duplicates == 2
    assert read.ticks[c.ID].to_list() == ["1001", "1002", "1004"]
    assert read.ticks[c.PRICE][0] == 9001.5  # the first one is kept
    assert read.quarantine.select(c.Q_LINE, c.Q_FIELD, c.Q_REASON).rows() == [
        (4, c.ID, v.R_DUPLICATE), (6, c.ID, v.R_DUPLICATE)
    ]


def test_same_id_on_other_symbol_or_null_ids_are_not_duplicates(tmp_path: Path) -> None:
    lines = [row(1), row(2, **{c.ID: "1001", c.SYMBOL: "ETHUSDT"}), row(3, **{c.ID: ""}), row(4, **{c.ID: ""})]
    read = read_trades(write(tmp_path, lines), now=NOW)
    assert read.duplicates == 0 and read.quarantine.height == 0 and read.ticks.height == 4


def test_out_of_order_rows_are_kept_in_file_order(tmp_path: Path) -> None:
    lines = [row(3), row(1), row(2)]
    read = read_trades(write(tmp_path, lines), now=NOW)
    assert read.quarantine.height == 0
    assert read.ticks[c.ID].to_list() == ["1003", "1001", "1002"]


def test_crlf_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(("\r\n".join([HEADER, row(1), row(2, **{c.SIDE: "x"}), row(3)]) + "\r\n").encode())
    read = read_trades(path, now=NOW)
    assert read.ticks[c.ID].to_list() == ["1001", "1003"]
    assert read.quarantine.select(c.Q_LINE, c.Q_FIELD, c.Q_RAW).rows() == [(3, c.SIDE, row(2, **{c.SIDE: "x"}))]


@pytest.mark.parametrize(("header", "field"), [
    (HEADER.replace("timestamp,local", "ts,local"), c.TIMESTAMP),
    (HEADER.replace(",amount", ""), c.AMOUNT),
    (HEADER + ",extra", "extra"),
    ("exchange;symbol;timestamp", c.EXCHANGE),
])
def test_wrong_header_raises_naming_file_line_field(tmp_path: Path, header: str, field: str) -> None:
    path = write(tmp_path, [row(1)], header=header)
    with pytest.raises(InputError) as caught:
        read_trades(path, now=NOW)
    assert (caught.value.path, caught.value.line, caught.value.field) == (str(path), 1, field)
    assert str(caught.value).startswith(f"{path}:1: ")


def test_missing_and_zero_byte_files_raise(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        read_trades(tmp_path / "nope.csv.gz", now=NOW)
    (tmp_path / "zero.csv").write_bytes(b"")
    with pytest.raises(InputError, match="no header"):
        read_trades(tmp_path / "zero.csv", now=NOW)


@pytest.fixture
def real_gz(real_data: Path, tmp_path: Path) -> tuple[bytes, pl.DataFrame]:
    """(gzipped real trades file, its ticks read from the plain file)."""
    plain = real_data / TRADES
    return gzip.compress(plain.read_bytes()), read_trades(plain, now=NOW).ticks


@pytest.mark.parametrize("keep", [0.2, 0.5, 0.93])
def test_truncated_gzip_keeps_every_complete_row(tmp_path: Path, real_gz: tuple[bytes, pl.DataFrame], keep: float) -> None:
    packed, full = real_gz
    cut = packed[: int(len(packed) * keep)]
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(cut)
    # Independent count of the complete lines in what survived the cut.
    complete_lines = zlib.decompressobj(wbits=31).decompress(cut).count(b"\n")
    read = read_trades(path, now=NOW)
    assert not read.complete
    assert read.ticks.equals(full.head(complete_lines - 1))
    assert read.rows_read == complete_lines - 1
    assert read.quarantine.select(c.Q_LINE, c.Q_FIELD, c.Q_REASON).rows() == [(complete_lines + 1, "file", v.R_TRUNCATED)]


def test_corrupt_gzip_keeps_a_prefix_and_reports(tmp_path: Path, real_gz: tuple[bytes, pl.DataFrame]) -> None:
    packed, full = real_gz
    middle = len(packed) // 2
    broken = packed[:middle] + bytes(b ^ 0xFF for b in packed[middle:middle + 64]) + packed[middle + 64:]
    path = tmp_path / "broken.csv.gz"
    path.write_bytes(broken)
    read = read_trades(path, now=NOW)
    assert not read.complete
    assert read.ticks.height > 1000
    # Every kept tick is the true tick of its line (corruption may also garble a row just before the break).
    good = read.ticks.join(full, on=list(c.TICK_COLUMNS), how="semi")
    assert good.height >= read.ticks.height - 1
    assert read.quarantine[c.Q_REASON][-1] == v.R_TRUNCATED


def test_validate_ticks_on_live_frame_without_lines() -> None:
    live = pl.DataFrame({
        c.EXCHANGE: ["binance", "binance", "binance"], c.SYMBOL: ["BTCUSDT"] * 3,
        c.TIMESTAMP: [datetime(2024, 8, 8, 23, 54, tzinfo=timezone.utc)] * 3,
        c.LOCAL_TIMESTAMP: [datetime(2024, 8, 8, 23, 54, 1, tzinfo=timezone.utc)] * 3,
        c.ID: [7, 8, 7], c.SIDE: ["buy", "sell", "buy"], c.PRICE: [60000.0, -1.0, 60000.0], c.AMOUNT: [0.1, 0.2, 0.1],
    })
    ticks, quarantine = validate_ticks(live, source="binance ws", now=NOW)
    assert ticks.schema == pl.Schema(schema.TICK_SCHEMA) and ticks[c.ID].to_list() == ["7"]
    assert quarantine.select(c.Q_SOURCE, c.Q_LINE, c.Q_FIELD, c.Q_REASON).rows() == [
        ("binance ws", None, c.PRICE, v.R_NOT_POSITIVE), ("binance ws", None, c.ID, v.R_DUPLICATE)
    ]


CORRUPTIONS = [
    {c.PRICE: "x1"}, {c.PRICE: "-3"}, {c.AMOUNT: "0"}, {c.SIDE: "hold"}, {c.TIMESTAMP: str(TS // 1000)},
    {c.SYMBOL: ""}, {c.EXCHANGE: ""}, {c.AMOUNT: "1,2"}, {c.LOCAL_TIMESTAMP: "soon"}, {c.PRICE: "nan"},
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.one_of(st.none(), st.sampled_from(range(len(CORRUPTIONS))), st.sampled_from(["dup", "short", "blank"])),
                      max_size=25),
       gz=st.booleans())
def test_any_mix_of_valid_and_corrupted_rows(tmp_path: Path, kinds: list, gz: bool) -> None:
    lines, valid_ids, bad_lines = [], [], []
    for n, kind in enumerate(kinds):
        if kind is None:
            lines.append(row(n))
            valid_ids.append(str(1000 + n))
        elif kind == "dup" and valid_ids:
            lines.append(row(n, **{c.ID: valid_ids[0]}))
            bad_lines.append(n + 2)
        elif kind == "dup":
            lines.append(row(n))
            valid_ids.append(str(1000 + n))
        elif kind in ("short", "blank"):
            lines.append(row(n)[:30] if kind == "short" else "")
            bad_lines.append(n + 2)
        else:
            lines.append(row(n, **CORRUPTIONS[kind]))
            bad_lines.append(n + 2)
    path = write(tmp_path, lines, name="mix.csv")
    if gz:
        path = tmp_path / "mix.csv.gz"
        path.write_bytes(gzip.compress((tmp_path / "mix.csv").read_bytes()))
    read = read_trades(path, now=NOW)
    assert read.ticks[c.ID].to_list() == valid_ids
    assert read.ticks[c.PRICE].to_list() == [9000 + int(i) - 1000 + 0.5 for i in valid_ids]
    assert read.quarantine[c.Q_LINE].to_list() == bad_lines
    assert read.rows_read == len(kinds) and read.complete


def test_multi_member_gzip_read_whole_on_both_paths(tmp_path: Path) -> None:
    first = gzip.compress(f"{HEADER}\n{row(1)}\n{row(2)}\n".encode())
    path = tmp_path / "multi.csv.gz"
    path.write_bytes(first + gzip.compress(f"{row(3)}\n{row(4)}\n".encode()))
    assert read_trades(path, now=NOW).ticks[c.ID].to_list() == ["1001", "1002", "1003", "1004"]
    path.write_bytes(first + gzip.compress(f"{row(3, **{c.SIDE: '?'})}\n{row(4)}\n".encode()))
    read = read_trades(path, now=NOW)
    assert read.complete and read.ticks[c.ID].to_list() == ["1001", "1002", "1004"]
    assert read.quarantine.select(c.Q_LINE, c.Q_FIELD).rows() == [(4, c.SIDE)]


def test_gzip_truncated_inside_or_just_after_header(tmp_path: Path, real_gz: tuple[bytes, pl.DataFrame]) -> None:
    packed, _ = real_gz
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(packed[:100])  # inflates to "exchange,symbol,time"
    with pytest.raises(InputError, match="truncated before the end of the header"):
        read_trades(path, now=NOW)
    path.write_bytes(packed[:200])  # the header and part of the first row
    read = read_trades(path, now=NOW)
    assert not read.complete and read.ticks.height == 0 and read.rows_read == 0
    assert read.quarantine.select(c.Q_LINE, c.Q_REASON).rows() == [(2, v.R_TRUNCATED)]


def test_text_and_line_paths_agree(tmp_path: Path) -> None:
    lines = [row(1), row(2, **{c.PRICE: "x"}), row(3, **{c.ID: ""}), row(4, **{c.SIDE: "b"}), row(5, **{c.ID: "1001"}), row(6)]
    path = write(tmp_path, lines)
    by_text, by_line = _read_as_text(path, str(path), NOW), _read_tolerant(path, str(path), NOW)
    assert by_text is not None
    assert by_text.ticks.equals(by_line.ticks) and by_text.quarantine.equals(by_line.quarantine)
    assert (by_text.rows_read, by_text.duplicates) == (by_line.rows_read, by_line.duplicates) == (6, 1)
    # A short row makes rows and lines ambiguous for the text path, so it declines.
    assert _read_as_text(write(tmp_path, [row(1), "a,b,1", row(3)]), "t", NOW) is None
