"""Amounts in minor units (cents), as every fact and view keeps them, written for people."""

from __future__ import annotations

# Every currency is shown as hundredths, as the funnel and the cost tables always were: a
# currency without cents (JPY) would read a hundred times too small. Known, not yet needed.
MINOR_PER_MAJOR = 100


def money(minor: float | None, currency: str | None = None, *, decimals: int = 2) -> str:
    """``123456`` -> ``"1,234.56 EUR"``; ``"-"`` when there is no amount."""
    if minor is None:
        return "-"
    amount = f"{minor / MINOR_PER_MAJOR:,.{decimals}f}"
    return f"{amount} {currency}" if currency else amount


def amounts(by_currency: dict[str, int]) -> str:
    """Several currencies' amounts on one line; ``"-"`` when there are none."""
    return ", ".join(money(v, c) for c, v in by_currency.items()) or "-"
