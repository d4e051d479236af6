"""Names that reach file paths, URLs and SQL: exchange ids and symbols, checked against what venues use
before anything else sees them (quoting alone is not enough)."""

from __future__ import annotations

import re

from .errors import ConfigError

# Venue symbols: letters, digits and . _ : / + - (BTCUSDT, BTC-PERPETUAL, BTC/USDT, .BXBT, BTCF0:USTF0),
# at most 64 characters; Tardis and the exchange feeds publish them in upper case.
_SYMBOL = re.compile(r"[A-Za-z0-9._:/+-]{1,64}")
# Exchange ids as Tardis names them: lower-case letters, digits, dashes and underscores.
_EXCHANGE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def symbol(text: str) -> str:
    """`text` as a venue symbol in upper case; ConfigError naming the symbol and the rule when it cannot be one."""
    value = text.strip()
    if not _SYMBOL.fullmatch(value) or set(value) <= set("./:+-_"):
        raise ConfigError(f"invalid symbol {text!r}: use letters, digits and . _ : / + - (at most 64), e.g. BTCUSDT")
    return value.upper()


def symbols(text: str | None) -> tuple[str, ...]:
    """Comma-separated symbols, each checked and upper-cased, duplicates dropped, order kept."""
    out: dict[str, None] = {}
    for part in (text or "").split(","):
        if part.strip():
            out[symbol(part)] = None
    return tuple(out)


def exchange(text: str) -> str:
    """`text` as an exchange id in lower case (binance-futures); ConfigError when it cannot be one."""
    value = text.strip().lower()
    if not _EXCHANGE.fullmatch(value):
        raise ConfigError(f"invalid exchange {text!r}: use lower-case letters, digits, '-' and '_', e.g. binance-futures")
    return value
