"""A battery of trade files the project never saw, each backfilled through the CLI: no traceback anywhere, every
failure one line naming the file and its cause, nothing lost (every data line is a stored tick or a counted
quarantine row) and nothing half visible (a failed file leaves no database)."""

from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from mdstream.cli import main

HEADER = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount"
T = 1704067200000000  # 2024-01-01 00:00:00 UTC in microseconds


def row(i: int, *, ts: int | None = None, id_: str | None = None, side: str = "buy", price: str = "42000.5",
        amount: str = "0.01", symbol: str = "BTCUSDT") -> str:
    """One Tardis trades line."""
    stamp = T + i * 1_000_000 if ts is None else ts
    return f"binance-futures,{symbol},{stamp},{stamp + 1500},{id_ if id_ is not None else 1000 + i},{side},{price},{amount}"


def body(*lines: str, header: str = HEADER, newline: str = "\n", final: bool = True) -> bytes:
    """A file of `header` and `lines`."""
    text = newline.join([header, *lines]) + (newline if final else "")
    return text.encode()


def clean(n: int = 20) -> list[str]:
    return [row(i) for i in range(n)]


def gz(data: bytes) -> bytes:
    return gzip.compress(data)


BIG = gz(body(*clean(4_000)))
# name -> (file bytes, gzip name?, expected exit code, words the error line must hold)
CASES: dict[str, tuple[bytes, bool, int, tuple[str, ...]]] = {
    "clean": (body(*clean()), False, 0, ()),
    "clean_gzip": (gz(body(*clean())), True, 0, ()),
    "bom": (b"\xef\xbb\xbf" + body(*clean()), False, 0, ()),
    "crlf": (body(*clean(), newline="\r\n"), False, 0, ()),
    "bom_crlf_gzip": (gz(b"\xef\xbb\xbf" + body(*clean(), newline="\r\n")), True, 0, ()),
    "no_final_newline": (body(*clean(), final=False), False, 0, ()),
    "header_only": (body(), False, 1, ("no trades",)),
    "empty_file": (b"", False, 1, ("empty file",)),
    "only_a_newline": (b"\n", False, 1, ("empty file",)),
    "renamed_column": (body(*clean(), header=HEADER.replace("price", "px")), False, 1, ("unexpected header", "price")),
    "extra_column": (body(*[r + ",x" for r in clean()], header=HEADER + ",extra"), False, 1, ("extra column",)),
    "missing_column": (body(*[r.rsplit(",", 1)[0] for r in clean()], header=HEADER.rsplit(",", 1)[0]), False, 1,
                       ("unexpected header", "amount")),
    "upper_case_header": (body(*clean(), header=HEADER.upper()), False, 1, ("unexpected header",)),
    "tab_separated": (body(*[r.replace(",", "\t") for r in clean()], header=HEADER.replace(",", "\t")), False, 1,
                      ("unexpected header",)),
    "semicolons": (body(*[r.replace(",", ";") for r in clean()], header=HEADER.replace(",", ";")), False, 1,
                   ("unexpected header",)),
    "quoted_fields": (body(*[r.replace("BTCUSDT", '"BTCUSDT"') for r in clean()]), False, None, ()),
    "quoted_comma": (body(*clean(5), row(5, side='"buy,sell"'), *[row(i) for i in range(6, 10)]), False, 0, ()),
    "ragged_short": (body(*clean(5), "binance-futures,BTCUSDT,1", *[row(i) for i in range(6, 10)]), False, 0, ()),
    "ragged_long": (body(*clean(5), row(5) + ",1,2", *[row(i) for i in range(6, 10)]), False, 0, ()),
    "blank_lines": (body(*clean(5), "", "", *[row(i) for i in range(6, 10)]), False, 0, ()),
    "huge_ids": (body(*[row(i, id_=str(10**40 + i)) for i in range(20)]), False, 0, ()),
    "negative_ids": (body(*[row(i, id_=str(-i - 1)) for i in range(20)]), False, 0, ()),
    "uuid_ids": (body(*[row(i, id_=f"6f1c{i:04d}-aaaa-bbbb-cccc-0123456789ab") for i in range(20)]), False, 0, ()),
    "empty_ids": (body(*[row(i, id_="") for i in range(20)]), False, 0, ()),
    "duplicate_ids": (body(*clean(10), *clean(10)), False, 0, ()),
    "nan_price": (body(*clean(5), row(5, price="NaN"), *[row(i) for i in range(6, 10)]), False, 0, ()),
    "inf_price": (body(*clean(5), row(5, price="inf"), *[row(i) for i in range(6, 10)]), False, 0, ()),
    "negative_price": (body(*clean(5), row(5, price="-1"), *[row(i) for i in range(6, 10)]), False, 0, ()),
    "zero_amount": (body(*clean(5), row(5, amount="0"), *[row(i) for i in range(6, 10)]), False, 0, ()),
    "negative_amount": (body(*clean(5), row(5, amount="-0.5"), *[row(i) for i in range(6, 10)]), False, 0, ()),
    "exponent_price": (body(*[row(i, price="4.2e4") for i in range(20)]), False, 0, ()),
    "text_price": (body(*clean(5), row(5, price="abc"), *[row(i) for i in range(6, 10)]), False, 0, ()),
    "spaces_in_fields": (body(*clean(5), row(5, price=" 42000.5 "), *[row(i) for i in range(6, 10)]), False, 0, ()),
    "millisecond_timestamps": (body(*[row(i, ts=T // 1000 + i) for i in range(20)]), False, None, ()),
    "float_timestamp": (body(*clean(5), row(5, ts=None).replace(str(T + 5_000_000), f"{T + 5_000_000}.5", 1),
                             *[row(i) for i in range(6, 10)]), False, 0, ()),
    "negative_timestamp": (body(*clean(5), row(5, ts=-5), *[row(i) for i in range(6, 10)]), False, 0, ()),
    "empty_timestamp": (body(*clean(5), row(5).replace(str(T + 5_000_000), "", 1), *[row(i) for i in range(6, 10)]),
                        False, 0, ()),
    "far_future": (body(*clean(5), row(5, ts=T * 3), *[row(i) for i in range(6, 10)]), False, 0, ()),
    "odd_sides": (body(*[row(i, side=s) for i, s in enumerate(["BUY", "Sell", "b", "", "unknown", "short"] * 3)]),
                  False, None, ()),
    "unicode_symbol": (body(*[row(i, symbol="BTC€USDT") for i in range(20)]), False, None, ()),
    "invalid_utf8": (body(*clean(5)) + b"binance-futures,BTC\xff\xfeUSDT,1,2,3,buy,1,1\n" + body(*clean(3), header=row(9)),
                     False, 0, ()),
    "nul_bytes": (body(*clean(5)) + b"binance-futures,BTCUSDT,\x00\x00,1,2,buy,1,1\n", False, 0, ()),
    "very_long_line": (body(*clean(5), row(5, id_="9" * 1_000_000), *[row(i) for i in range(6, 10)]), False, None, ()),
    "out_of_order": (body(*[row(i) for i in (5, 1, 9, 3, 0, 7, 2, 8, 6, 4)]), False, 0, ()),
    "two_symbols": (body(*clean(10), *[row(i, symbol="ETHUSDT") for i in range(10)]), False, 0, ()),
    "two_days": (body(*clean(10), *[row(i, ts=T + 86_400_000_000 + i) for i in range(10)]), False, 0, ()),
    "truncated_gzip": (BIG[: len(BIG) // 2], True, 3, ("finished with data gaps",)),
    "gzip_then_garbage": (gz(body(*clean())) + b"\x00garbage", True, None, ()),
    "not_gzip_named_gz": (body(*clean()), True, 0, ()),
    "gzip_broken_header": (b"\x1f\x8b\x08\x00garbage-not-deflate", True, 1, ("cannot read the header",)),
    "two_gzip_members": (gz(body(*clean(5))) + gz("\n".join(row(i) for i in range(5, 10)).encode() + b"\n"), True, 0, ()),
}


def data_lines(data: bytes, gzipped: bool) -> int | None:
    """Lines after the header, a final newline not counted; None when the file cannot be read whole."""
    try:
        text = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    except (OSError, EOFError):
        return None
    lines = text.split(b"\n")
    if lines and lines[-1] in (b"", b"\r"):
        lines = lines[:-1]
    return max(0, len(lines) - 1)


def stored(db: Path) -> tuple[int, int]:
    """(ticks, quarantined rows) in the database."""
    with duckdb.connect(str(db), read_only=True) as con:
        return (con.execute("SELECT count(*) FROM ticks").fetchone()[0],
                con.execute("SELECT count(*) FROM quarantine").fetchone()[0])


@pytest.mark.parametrize("name", list(CASES))
def test_battery(name, tmp_path):
    data, gzipped, expected_code, words = CASES[name]
    path = tmp_path / f"binance-futures_trades_2024-01-01_BTCUSDT.csv{'.gz' if gzipped else ''}"
    path.write_bytes(data)
    db = tmp_path / "m.duckdb"
    result = CliRunner().invoke(main, ["backfill", "--input", str(path), "--store-ticks", "--quiet", "--duckdb", str(db)])
    output = result.output
    assert "Traceback" not in output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1, 3), output
    if expected_code is not None:
        assert result.exit_code == expected_code, output
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    if result.exit_code:
        assert len(errors) == 1, output
        assert str(path) in errors[0], errors[0]
        for word in words:
            assert word in errors[0], errors[0]
    if result.exit_code == 1:
        if "were rejected" in errors[0]:  # nothing valid: the rejected rows are kept, with their reasons
            assert stored(db) == (0, data_lines(data, gzipped))
        else:
            assert not db.exists(), "a failed file left a database behind"
        return
    ticks, quarantined = stored(db)
    assert ticks > 0
    lines = data_lines(data, gzipped)
    if result.exit_code == 0 and lines is not None:
        assert ticks + quarantined == lines, (ticks, quarantined, lines)  # every line accounted for


def test_the_battery_has_at_least_45_cases():
    assert len(CASES) >= 45
