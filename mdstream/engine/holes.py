"""Long runs without trades inside one fold: a feed gap whose inside is not built, so a jump in time (a feed
down for days, a replay across a hole in its input) costs a few rows, not millions of empty windows."""

from __future__ import annotations

import polars as pl

from ..contract import columns as c
from ..contract.schema import TS
from ..kernel import gaps as gp

_KEY = list(c.SERIES_KEY)
SERIES = [c.EXCHANGE, c.SYMBOL]
GAP_NO_TRADES = "no trades over a span longer than the longest built at once"


def split_holes(segments: pl.DataFrame, open_: pl.DataFrame, base: str, max_span_us: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(segments without the windows inside holes, the holes as gaps). A hole is a run of more than `max_span_us`
    without a trade window of the base timeframe, between the series' cursor, its trade windows and the end of
    what is built. A window of any timeframe lying wholly inside a hole is not built; the windows at its edges are,
    and the hole (a gap) marks them feed. `segments` has one row per series and timeframe (_lo, _hi, _w, ...)."""
    base_b = segments.filter(pl.col(c.TIMEFRAME) == base).select(*SERIES, "_lo", "_hi", "_w")
    ts = pl.col(c.TIMESTAMP_IN).dt.epoch("us")
    points = (open_.select(*SERIES, ts.alias("_s")).join(base_b, on=SERIES)
              .filter((pl.col("_s") >= pl.col("_lo")) & (pl.col("_s") < pl.col("_hi"))).sort(*SERIES, "_s"))
    prev_end = (pl.col("_s") + pl.col("_w")).shift(1).over(SERIES)
    inner = points.with_columns(pl.coalesce(prev_end, pl.col("_lo")).alias("_hs")).filter(
        pl.col("_s") - pl.col("_hs") > max_span_us).select(*SERIES, "_hs", pl.col("_s").alias("_he"))
    last = points.group_by(SERIES).agg((pl.col("_s").max() + pl.col("_w").first()).alias("_last"))
    after = (base_b.join(last, on=SERIES, how="left").with_columns(pl.coalesce("_last", "_lo").alias("_hs"))
             .filter(pl.col("_hi") - pl.col("_hs") > max_span_us).select(*SERIES, "_hs", pl.col("_hi").alias("_he")))
    holes = pl.concat([inner, after])
    if holes.height == 0:
        return segments, pl.DataFrame(schema=gp.GAP_SCHEMA)
    by_series: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for exchange, symbol, hs, he in holes.iter_rows():
        by_series.setdefault((exchange, symbol), []).append((hs, he))
    hit = pl.DataFrame(list(by_series), schema={c.EXCHANGE: pl.String(), c.SYMBOL: pl.String()}, orient="row")
    affected = segments.join(hit, on=SERIES, how="semi")
    rows = []
    for row in affected.iter_rows(named=True):
        lo, hi, w = row["_lo"], row["_hi"], row["_w"]
        for hs, he in sorted(by_series[(row[c.EXCHANGE], row[c.SYMBOL])]):
            skip_lo, skip_hi = -(-hs // w) * w, he // w * w  # windows wholly inside [hs, he)
            if skip_hi <= skip_lo or skip_hi <= lo or skip_lo >= hi:
                continue
            if skip_lo > lo:
                rows.append({**row, "_lo": lo, "_hi": skip_lo})
            lo = max(lo, skip_hi)
        if hi > lo:
            rows.append({**row, "_lo": lo, "_hi": hi})
    kept = segments.join(hit, on=SERIES, how="anti")
    split = pl.DataFrame(rows, schema=segments.schema) if rows else segments.clear()
    gaps = holes.select(*SERIES, pl.col("_hs").cast(TS).alias(gp.GAP_START), pl.col("_he").cast(TS).alias(gp.GAP_END),
                        pl.lit(GAP_NO_TRADES).alias(gp.GAP_REASON))
    return pl.concat([kept, split]), gaps.cast(gp.GAP_SCHEMA)
