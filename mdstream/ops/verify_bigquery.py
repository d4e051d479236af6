"""`mdstream verify` against BigQuery: read raw ticks and candles back, recompute locally in DuckDB, diff."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from ..contract.instruments import Instrument
from ..inputs.instruments import InstrumentBook
from ..sinks.bigquery.config import BigQueryConfig, rest_client
from ..sinks.bigquery.views import read_candles, read_ticks
from ..sinks.duckdb_schema import connect
from .verify import COMPARED, WINDOW_KEY, VerifyReport, build_report, instruments_of, recompute


def verify_bigquery(config: BigQueryConfig, *, symbols: Sequence[str], from_: datetime, to: datetime,
                    rel_tol: float = 1e-9, instruments: Iterable[Instrument] = ()) -> VerifyReport:
    """Recompute candles of [from_, to) from the ticks stored in BigQuery with the DuckDB SQL and diff them
    against BigQuery's candles_latest; `instruments` are the --instrument overrides the writing run was given."""
    client = rest_client(config)
    ticks = read_ticks(config, list(symbols), from_, to, client=client)
    stored = read_candles(config, list(symbols), from_, to, client=client).select(*WINDOW_KEY, *COMPARED)
    con = connect(":memory:")
    try:
        # The recomputation breaks full ties by arrival order (rowid), so the ticks go into a real table.
        con.register("_read_back", ticks.to_arrow())
        con.execute("CREATE TABLE ticks AS SELECT * FROM _read_back")
        rules = instruments_of(con, InstrumentBook(instruments))
        expected = recompute(con, symbols=list(symbols), start=from_, end=to, instruments=rules)
    finally:
        con.close()
    return build_report(expected, stored, rel_tol=rel_tol)
