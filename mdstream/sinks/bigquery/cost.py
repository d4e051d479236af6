"""What writing to BigQuery costs: billed bytes of Arrow data and the Storage Write API price."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from ...contract import timeframes
from ..base import CANDLES, TICKS
from .schema import TABLES, arrow_schema

# Google Cloud, "BigQuery pricing" -> Data ingestion pricing (US multi-region, on-demand):
# BigQuery Storage Write API, $0.025 per GiB ingested; the first 2 TiB per month are free.
PRICE_PER_GIB_USD = 0.025
FREE_GIB_PER_MONTH = 2 * 1024
GIB = 1024 ** 3
# Google Cloud, "Storage pricing" -> data size calculation: INT64, FLOAT64 and TIMESTAMP take 8 logical
# bytes, STRING 2 bytes + its UTF-8 length; a NULL of any type takes 0 bytes.
FIXED_BYTES = 8
STRING_OVERHEAD = 2
SECONDS_PER_MONTH = 30 * 86400


def billed_bytes(table: pa.Table) -> int:
    """Logical bytes BigQuery bills for `table`: sum over non-null values of 8 (numbers, times) or 2 + UTF-8 length."""
    total = 0
    for column in table.columns:
        valid = len(column) - column.null_count
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            lengths = pc.sum(pc.binary_length(column)).as_py() or 0
            total += lengths + STRING_OVERHEAD * valid
        else:
            total += FIXED_BYTES * valid
    return total


def cost_usd(billed: int, *, free_gib: float = 0.0) -> float:
    """Price of `billed` bytes: max(0, GiB - free_gib) * $0.025."""
    return max(0.0, billed / GIB - free_gib) * PRICE_PER_GIB_USD


def summary(rows: int, billed: int) -> str:
    """One line for the end of a run, e.g. 'BigQuery: 1,234 rows streamed, ~0.5MB, $0.0025 cost' (no free tier)."""
    return f"BigQuery: {rows:,} rows streamed, ~{billed / 1e6:.1f}MB, ${cost_usd(billed):.4f} cost"


def _row_bytes(kind: str, strings: dict[str, int], nulls: frozenset[str] = frozenset()) -> int:
    """Billed bytes of one row of `kind` given the UTF-8 length of each string column and which columns are null."""
    total = 0
    for field in arrow_schema(TABLES[kind]):
        if field.name in nulls:
            continue
        total += STRING_OVERHEAD + strings.get(field.name, 0) if pa.types.is_string(field.type) else FIXED_BYTES
    return total


@dataclass(frozen=True)
class MonthlyEstimate:
    """Rows, billed bytes and cost of one month of writes."""

    rows: int
    billed_bytes: int
    cost_usd: float  # after the free 2 TiB
    cost_usd_no_free_tier: float

    def line(self, what: str) -> str:
        """'what: rows/month, GiB/month, $/month' for a README table."""
        return (f"{what}: {self.rows:,} rows/month, {self.billed_bytes / GIB:.3f} GiB/month, "
                f"${self.cost_usd:.4f}/month (${self.cost_usd_no_free_tier:.4f} without the free tier)")


def _estimate(rows: int, row_bytes: int) -> MonthlyEstimate:
    """MonthlyEstimate of `rows` rows of `row_bytes` each."""
    billed = rows * row_bytes
    return MonthlyEstimate(rows, billed, cost_usd(billed, free_gib=FREE_GIB_PER_MONTH), cost_usd(billed))


def candles_per_month(symbol: str = "BTCUSDT", exchange: str = "binance-futures",
                      timeframes_: tuple[str, ...] = timeframes.ALL_TIMEFRAMES) -> MonthlyEstimate:
    """Candle rows of one symbol over 30 days: sum over timeframes of 30*86400/seconds, each a full row (revision 0)."""
    rows = sum(SECONDS_PER_MONTH // int(timeframes.duration_seconds(tf)) for tf in timeframes_)
    total = 0
    for tf in timeframes_:
        count = SECONDS_PER_MONTH // int(timeframes.duration_seconds(tf))
        # A quiet window still has every column; gap is null on a complete window (0 bytes).
        total += count * _row_bytes(CANDLES, {"exchange": len(exchange), "symbol": len(symbol), "timeframe": len(tf)},
                                    frozenset({"gap"}))
    return MonthlyEstimate(rows, total, cost_usd(total, free_gib=FREE_GIB_PER_MONTH), cost_usd(total))


def ticks_per_month(trades_per_second: float, symbol: str = "BTCUSDT", exchange: str = "binance-futures",
                    id_length: int = 10, side_length: int = 4) -> MonthlyEstimate:
    """Tick rows over 30 days at `trades_per_second`: rows * (8*4 + strings of exchange, symbol, id, side + 2 each)."""
    rows = int(trades_per_second * SECONDS_PER_MONTH)
    row = _row_bytes(TICKS, {"exchange": len(exchange), "symbol": len(symbol), "id": id_length, "side": side_length})
    return _estimate(rows, row)
