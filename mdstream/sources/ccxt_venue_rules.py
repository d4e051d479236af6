"""What some venues' trades mean beyond ccxt's market data: the name the venue's own API gives a market, the
unit of a trade's amount when it is not ccxt's contract, and the field numbering a market's trades consecutively."""

from __future__ import annotations

# Deribit's trades report the amount in USD (inverse perpetuals and futures) or in the base coin (linear ones and
# options), never in contracts: one unit of amount is 1 USD or 1 coin, whatever contract size ccxt reports
# (BTC-PERPETUAL contracts are 10 USD, BTC_USDC-PERPETUAL ones 0.001 BTC).
AMOUNT_NOT_IN_CONTRACTS = frozenset({"deribit"})

# Venues whose public trades carry the MAKER's side, which ccxt passes on as the trade's side: the aggressor, which
# ticks carry, is the other one. Coinbase documents its matches' `side` as "the maker order side" (a `buy` side is
# a down-tick), and its Advanced Trade `market_trades` carry the same field of the same matching engine; ccxt turns
# it to the taker's side for Coinbase Exchange but not for Advanced Trade.
MAKER_SIDE = frozenset({"coinbase"})

# The field of a venue's raw trade (ccxt's `info`) that numbers each market's trades consecutively, where its trade
# id does not: a jump in it names exactly the trades an outage missed, so the gap can be filled from REST and
# proven complete. Deribit's `trade_seq` is "the sequence number of the trade within instrument"; its trade_id is
# not consecutive per instrument (and is "ETH-<n>" text for ETH). Kraken's spot WebSocket v2 `trade_id` is "a
# sequence number, unique per book" (per pair), the same number its REST `Trades` rows end with; ccxt also makes it
# the trade id, but naming it here makes the source report its jumps.
SEQUENCE_FIELD = {"deribit": "trade_seq", "kraken": "trade_id"}


# The ccxt market field holding the symbol a venue's ticks carry, where ccxt's id is not the venue's stable name:
# Kraken's pair as its WebSocket v1 and Tardis write it (XBT/USD), not the REST pair id (XXBTZUSD) nor the v2
# WebSocket's BTC/USD, so ticks of this source and of tardis-machine's `kraken` match.
TICK_SYMBOL = {"kraken": "wsId"}
# Market fields a symbol may also be given as (Kraken: XBT/USD, XBTUSD), besides the venue's symbol.
OTHER_FORMS = ("id", "wsId", "altname")


def venue_symbol(venue: str, market: dict) -> str:
    """The symbol the venue's API and Tardis name `market` by: ccxt's market id, except Kraken (its WebSocket pair
    name, TICK_SYMBOL) and Hyperliquid perpetuals, whose ccxt id is the asset index ("0") while the venue names
    them by coin (BTC, or dex:COIN)."""
    if venue == "hyperliquid" and market.get("swap") and market.get("baseName"):
        return str(market["baseName"])
    return str(market.get(TICK_SYMBOL.get(venue, "id")) or market["id"])


def accepted_forms(venue: str, market: dict) -> set[str]:
    """Every way a user may write `market` besides ccxt's unified symbol: the venue's symbol and, except on
    Hyperliquid (where an id is an asset index, no name), the ids ccxt's market data carries (OTHER_FORMS)."""
    forms = {venue_symbol(venue, market)}
    if venue != "hyperliquid":
        forms |= {str(market[k]) for k in OTHER_FORMS if market.get(k) is not None}
    return forms


def contract_size(venue: str, market: dict) -> float:
    """The value of one unit of a trade's amount: ccxt's contractSize, or 1 (USD or coin) for a venue whose trades
    count USD or coins rather than contracts."""
    if venue in AMOUNT_NOT_IN_CONTRACTS:
        return 1.0
    return float(market.get("contractSize") or 1.0)
