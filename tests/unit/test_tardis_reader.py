"""Reading real Tardis trades CSV files: counts, dtypes, times, ids, sides; .gz equals plain."""

from __future__ import annotations

import gzip
import shutil
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest

from mdstream.contract import columns as c
from mdstream.contract import schema
from mdstream.inputs.tardis import _read_tolerant, read_trades
from mdstream.kernel.order import ID_NUMBER

NOW = datetime(2024, 1, 1, tzinfo=timezone.utc)
TRADES = "tardis/binance-futures_trades_2020-02-22_BTCUSDT.first9999rows.csv"
BITMEX = "tardis/sample_bitmex_trades_XBTUSD.csv"


@pytest.fixture
def trades_csv(real_data: Path) -> Path:
    """The real 9,999-row binance-futures trades file."""
    return real_data / TRADES


def test_real_file_counts_dtypes_and_times(trades_csv: Path) -> None:
    read = read_trades(trades_csv, now=NOW)
    ticks = read.ticks
    assert ticks.height == 9_999 and read.rows_read == 9_999
    assert read.complete and read.duplicates == 0 and read.quarantine.height == 0
    assert read.source == str(trades_csv)
    assert ticks.schema == pl.Schema(schema.TICK_SCHEMA)
    assert read.quarantine.schema == pl.Schema(schema.QUARANTINE_SCHEMA)
    first, last = ticks.row(0, named=True), ticks.row(-1, named=True)
    assert first[c.TIMESTAMP] == datetime(2020, 2, 22, 0, 0, 2, 111_000, tzinfo=timezone.utc)
    assert first[c.LOCAL_TIMESTAMP] == datetime(2020, 2, 22, 0, 0, 2, 418_379, tzinfo=timezone.utc)
    assert last[c.TIMESTAMP] == datetime(2020, 2, 22, 2, 5, 47, 728_000, tzinfo=timezone.utc)
    assert (first[c.EXCHANGE], first[c.SYMBOL], first[c.ID], first[c.SIDE]) == ("binance-futures", "BTCUSDT", "42377944", "buy")
    assert (first[c.PRICE], first[c.AMOUNT]) == (9682.0, 0.132)


def test_real_file_ids_contiguous_and_sides(trades_csv: Path) -> None:
    ticks = read_trades(trades_csv, now=NOW).ticks
    ids = ticks[c.ID].cast(pl.Int64)
    assert ids.null_count() == 0
    assert ids.diff().drop_nulls().unique().to_list() == [1]
    assert set(ticks[c.SIDE].unique().to_list()) == {c.SIDE_BUY, c.SIDE_SELL}
    raw = pl.read_csv(trades_csv, infer_schema=False)
    # Sides, prices and amounts arrive exactly as written, row for row.
    assert ticks[c.SIDE].to_list() == raw[c.SIDE].to_list()
    assert ticks[c.PRICE].to_list() == raw[c.PRICE].cast(pl.Float64).to_list()
    assert (ticks[c.TIMESTAMP].dt.epoch("us") == raw[c.TIMESTAMP].cast(pl.Int64)).all()


def test_gzip_and_plain_give_identical_frames(trades_csv: Path, tmp_path: Path) -> None:
    packed = tmp_path / "trades.csv.gz"
    with open(trades_csv, "rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    plain, gz = read_trades(trades_csv, now=NOW), read_trades(packed, now=NOW)
    assert gz.ticks.equals(plain.ticks)
    assert (gz.rows_read, gz.complete, gz.quarantine.height) == (plain.rows_read, True, 0)


def test_gzip_detected_by_content_not_name(trades_csv: Path, tmp_path: Path) -> None:
    disguised = tmp_path / "trades.csv"
    disguised.write_bytes(gzip.compress(trades_csv.read_bytes()))
    assert read_trades(disguised, now=NOW).ticks.equals(read_trades(trades_csv, now=NOW).ticks)


def test_fast_and_tolerant_paths_agree(trades_csv: Path) -> None:
    fast = read_trades(trades_csv, now=NOW)
    tolerant = _read_tolerant(trades_csv, str(trades_csv), NOW)
    assert tolerant.ticks.equals(fast.ticks)
    assert (tolerant.rows_read, tolerant.quarantine.height, tolerant.complete) == (9_999, 0, True)


def test_string_trade_ids(real_data: Path) -> None:
    read = read_trades(real_data / BITMEX, now=NOW)
    assert read.ticks.height == 10 and read.quarantine.height == 0
    assert read.ticks[c.ID][0] == "ccc3c1fa-212c-e8b0-1706-9b9c4f3d5ecf"
    assert read.ticks[c.AMOUNT][0] == 2152.0


def test_header_only_file_is_empty_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text(",".join(c.TICK_COLUMNS) + "\n")
    read = read_trades(path, now=NOW)
    assert read.ticks.height == 0 and read.rows_read == 0 and read.complete
    assert read.ticks.schema == pl.Schema(schema.TICK_SCHEMA)
    gz = tmp_path / "empty.csv.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert read_trades(gz, now=NOW).ticks.height == 0


def test_numeric_ids_keep_every_other_value(trades_csv: Path) -> None:
    """numeric_ids reads the same rows; only the id column differs, as the number its text spells."""
    text = read_trades(trades_csv, now=NOW)
    numeric = read_trades(trades_csv, now=NOW, numeric_ids=True)
    assert numeric.ticks[c.ID].dtype == pl.Int64
    assert numeric.ticks.drop(c.ID).equals(text.ticks.drop(c.ID))
    assert numeric.ticks[c.ID].cast(pl.String).equals(text.ticks[c.ID])
    assert numeric.id_numbers is not None and numeric.id_numbers.equals(numeric.ticks[c.ID])
    assert numeric.single_series and numeric.quarantine.height == 0


def test_numeric_ids_fall_back_to_text_when_a_later_id_is_not_an_integer(tmp_path: Path) -> None:
    """An integer first id only suggests the rest are: a text id further down still reads, as text."""
    rows = [f"binance,BTCUSDT,{1_700_000_000_000_000 + i},{1_700_000_000_000_100 + i},{i},buy,100.5,0.1" for i in range(1, 4)]
    rows.append("binance,BTCUSDT,1700000000000004,1700000000000104,x-4,sell,100.4,0.2")
    path = tmp_path / "mixed.csv"
    path.write_text(",".join(c.TICK_COLUMNS) + "\n" + "\n".join(rows) + "\n")
    read = read_trades(path, now=NOW, numeric_ids=True)
    assert read.ticks[c.ID].to_list() == ["1", "2", "3", "x-4"]
    assert read.quarantine.height == 0 and read.ticks.height == 4


def test_numeric_ids_not_tried_for_text_ids(real_data: Path) -> None:
    read = read_trades(real_data / BITMEX, now=NOW, numeric_ids=True)
    assert read.ticks[c.ID].dtype == pl.String and read.ticks.height == 10


@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize("numeric", [True, False])
def test_several_symbols_share_ids_yet_a_repeat_within_one_is_a_duplicate(tmp_path: Path, numeric: bool,
                                                                          split: bool) -> None:
    """Ids rising per symbol (and shared across symbols) are clean; an id repeated within one symbol is not,
    whether the whole file is checked or (`split`) each series after the reader splits it."""
    header = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
    rows = [f"binance-futures,{s},{1704067200000000 + k * 1000},{1704067200000000 + k * 1000 + 5},{100 + k // 2},"
            f"buy,1.0,1.0\n" for k, s in enumerate(["BTCUSDT", "ETHUSDT"] * 3)]
    clean = tmp_path / "clean.csv"
    clean.write_text(header + "".join(rows))
    read = read_trades(clean, now=datetime.now(timezone.utc), numeric_ids=numeric, split=split)
    assert (read.ticks.height, read.duplicates, read.quarantine.height) == (6, 0, 0)
    if split:  # the series in order of first appearance, each with its rows in file order
        assert read.parts is not None
        assert [p[c.SYMBOL].unique().to_list() for p in read.parts] == [["BTCUSDT"], ["ETHUSDT"]]
        assert [p[c.ID].cast(pl.Int64).to_list() for p in read.parts] == [[100, 101, 102]] * 2
        if not numeric:  # text ids: their parsed numbers ride along for the order and gap checks
            assert [p[ID_NUMBER].to_list() for p in read.parts] == [[100, 101, 102]] * 2
    else:
        assert read.parts is None
    repeated = tmp_path / "repeated.csv"
    repeated.write_text(header + "".join(rows) + rows[2].replace(",buy,", ",sell,"))
    read = read_trades(repeated, now=datetime.now(timezone.utc), numeric_ids=numeric, split=split)
    assert (read.ticks.height, read.duplicates) == (6, 1)
    # ids not rising within a series, yet distinct: still clean, nothing quarantined
    shuffled = tmp_path / "shuffled.csv"
    shuffled.write_text(header + "".join(rows[:2] + rows[4:] + rows[2:4]))
    read = read_trades(shuffled, now=datetime.now(timezone.utc), numeric_ids=numeric, split=split)
    assert (read.ticks.height, read.duplicates, read.quarantine.height) == (6, 0, 0)
    assert (read.parts is not None) == split
