"""Render docs/contract.md from mdstream.schema (columns, dtypes, descriptions); --check fails when it is stale.

    python scripts/gen_contract_doc.py          # rewrite docs/contract.md
    python scripts/gen_contract_doc.py --check  # exit 1 if docs/contract.md differs from the code
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

from mdstream.contract import columns as c
from mdstream.contract import features, instruments, schema, timeframes
from mdstream.contract.instrument_table import RULES

DOC = Path(__file__).resolve().parents[1] / "docs" / "contract.md"


def arrow_type(dtype: pl.DataType) -> str:
    """Arrow type name of a Polars dtype, e.g. timestamp[us, tz=UTC]."""
    return str(schema.arrow_schema({"x": dtype}).field("x").type)


def table(columns: dict[str, pl.DataType], names: tuple[str, ...] | None = None,
          descriptions: dict[str, str] | None = None) -> list[str]:
    """Markdown table rows (column, Polars dtype, Arrow type, description) for `names` of `columns`."""
    rows = ["| column | Polars | Arrow | description |", "| --- | --- | --- | --- |"]
    for name in names or tuple(columns):
        description = (descriptions or schema.DESCRIPTIONS).get(name, "").replace("|", "\\|")
        rows.append(f"| `{name}` | `{columns[name]}` | `{arrow_type(columns[name])}` | {description} |")
    return rows


def feature_table() -> list[str]:
    """Markdown table of the feature registry (column, dtype, warm-up candles, carried state, description)."""
    rows = ["| column | Polars | Arrow | warm-up | state | description |", "| --- | --- | --- | --- | --- | --- |"]
    for feature in features.FEATURES:
        dtype = schema.CANDLE_SCHEMA[feature.name]
        state = ", ".join(feature.state) or "-"
        description = feature.description.replace("|", "\\|")
        rows.append(f"| `{feature.name}` | `{dtype}` | `{arrow_type(dtype)}` | {feature.lags} | {state} | {description} |")
    return rows


def builtin_rules() -> list[str]:
    """Markdown table of the built-in instrument rules (exchange, symbol pattern, kind, contract size)."""
    rows = ["| exchange | symbol (regex, whole) | kind | contract size |", "| --- | --- | --- | --- |"]
    for venue, pattern, fields in RULES:
        size = fields.get("contract_size")
        if size is None:
            size = ", ".join(f"{k if k != '*' else 'others'} {v:g}" for k, v in fields["sizes"].items())
        else:
            size = f"{size:g}"
        currency = fields.get("contract_currency", "")
        currency = "" if not currency or "{" in currency else f" {currency}"
        cell = pattern.replace("|", "\\|")
        rows.append(f"| `{venue}` | `{cell}` | {fields['kind']} | {size}{currency} |")
    return rows


VOLUME_RULES = [
    "## Volumes by instrument kind",
    "",
    "Each series' instrument metadata (below) gives its kind and contract size `s`, the value of one unit of",
    "the trade `amount` as the venue reports it. Per trade, summed per window:",
    "",
    "| kind | `volume` | `base_volume` | `quote_volume` | `s` is |",
    "| --- | --- | --- | --- | --- |",
    "| spot | amount | amount x s | price x amount x s | 1 (base units) |",
    "| linear | amount | amount x s | price x amount x s | base asset per unit of amount |",
    "| inverse | amount | amount x s / price | amount x s | quote currency per contract |",
    "| quanto | amount | amount x s | price x amount x s | settlement currency per 1.0 of price |",
    "",
    "`vwap` = `quote_volume` / `base_volume` and `vwap_day` = cumulative `quote_volume` / cumulative",
    "`base_volume` since UTC midnight are prices for every kind. `buy_volume`, `sell_volume`, `volume_sma_20`,",
    "`volume_ratio`, `avg_trade_size` and `kyle_lambda` use `volume` units (contracts for derivatives); `amihud`",
    "uses the notional `quote_volume`.",
    "",
    "- **Quanto** (BitMEX ETHUSD, ETH/USD futures): one contract pays a fixed Bitcoin multiplier, 0.000001 XBT",
    "  per 1 USD of price, whatever the ETH/USD or XBT/USD rates. Its `quote_volume` is the trades' value in the",
    "  settlement currency (XBT value = price x contracts x multiplier, BitMEX's turnover), `base_volume` the",
    "  multiplier-weighted contracts (XBT per 1 USD of price: no asset unit, the trade feed carries no XBT/USD",
    "  rate), so `vwap` is the contract-weighted ETH/USD price.",
    "- **Binance COIN-M klines** (`binance-delivery`, `/dapi/v1/klines` and the data.binance.vision files): the",
    "  volume column is contracts (our `volume`); the column after the close time, which the kline layout",
    "  Binance shares with spot and USD-M names \"quote asset volume\" (`quote_volume` in the CSV files), holds",
    "  the base-asset volume for COIN-M: it equals our `base_volume`, not our `quote_volume` (the USD notional,",
    "  contracts x contract size). Taker buy volume is contracts (our `buy_volume`).",
    "- **Deribit** inverse trades report the amount in USD (BTC contracts are 10 USD, ETH 1 USD), so `s` = 1 USD",
    "  and `volume` is USD.",
    "- Rows stored before `base_volume` existed were computed as linear (base = volume): `candles_latest` and the",
    "  Parquet reader show `base_volume` = `volume` for them.",
    "",
    "## Instrument metadata",
    "",
    "Resolved once per series and run: `--instrument [EXCHANGE:]SYMBOL=KIND[:SIZE[:CURRENCY]]` first, then the",
    "venue's public instrument list (Binance COIN-M `exchangeInfo` `contractSize`, OKX `ctVal`/`ctType`),",
    "fetched when online and cached on disk for 7 days, then the built-in table. A symbol of a derivative venue",
    "none of these describes is not guessed: it is computed as linear with size 1 and the run summary warns.",
    "`mdstream verify` resolves the same way (give it the same `--instrument` values).",
    "",
]


def render() -> str:
    """The whole contract document as Markdown text."""
    tf_list = ", ".join(f"`{tf.name}` ({tf.width_us // timeframes.US_PER_SECOND:,} s{'' if tf.default else ', on request'})"
                        for tf in timeframes.REGISTRY)
    aliases = ", ".join(f"`{alias}` = `{canonical}`" for alias, canonical in timeframes.ALIASES.items())
    lines = [
        "# Data contract",
        "",
        "<!-- Generated by scripts/gen_contract_doc.py from mdstream/contract (schema.py, features.py); do not edit. -->",
        "",
        "Every table below is produced from the code (`mdstream.columns`, `mdstream.schema`), so it always",
        "matches what mdstream writes. Timestamps are UTC with microsecond precision.",
        "",
        "## Timeframes",
        "",
        f"{tf_list}. Aliases: {aliases}. Windows are half-open `[timestamp_in, timestamp_in + timeframe)`",
        "and aligned to UTC midnight. Jobs build every timeframe not marked \"on request\" unless `--timeframes`",
        "names others. `M` (upper case), `mo`, `month` and `w` are refused: to traders `1M` is a month, not a minute.",
        "",
        "## Ticks (table `ticks`)",
        "",
        "One row per trade.",
        "",
        *table(schema.TICK_SCHEMA),
        "",
        "## Candles (table `candles`, view `candles_latest`)",
        "",
        f"One row per ({', '.join(c.CANDLE_KEY)}). Readers use `candles_latest`, which keeps the highest",
        f"`{c.REVISION}` per window. `{c.GAP}` values: null (complete), `{c.GAP_QUIET}` (no trades while the",
        f"feed was up), `{c.GAP_FEED}` (source down or data missing).",
        "",
        *table(schema.CANDLE_SCHEMA, c.CANDLE_BASE_COLUMNS),
        "",
        "### Features",
        "",
        "Computed per (exchange, symbol, timeframe) series over closed candles; null during the warm-up: the",
        "first `warm-up` candles of a series (a window of n reads n - 1 earlier candles). Recursive features",
        "resume from carried `state` rather than re-reading their history. Units in brackets: [price] is the",
        "quote currency per base unit, [volume] the unit of `volume`. From the registry in",
        "mdstream/contract/features.py.",
        "",
        *feature_table(),
        "",
        *VOLUME_RULES,
        *table(instruments.INSTRUMENT_SCHEMA, descriptions=instruments.INSTRUMENT_DESCRIPTIONS),
        "",
        "Built-in table (Tardis symbol names):",
        "",
        *builtin_rules(),
        "",
        "## Quarantine (table `quarantine`)",
        "",
        "Input rows that could not become ticks, kept for inspection.",
        "",
        *table(schema.QUARANTINE_SCHEMA),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Write docs/contract.md, or with --check report whether it is current (exit 0) or stale (exit 1)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if docs/contract.md is stale")
    parser.add_argument("--output", type=Path, default=DOC, help="where the document goes")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run python scripts/gen_contract_doc.py", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
