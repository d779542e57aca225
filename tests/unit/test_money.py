"""Amounts in minor units, written for people: one helper for the CLI and the lead report."""

from __future__ import annotations

from lifecycle.domain.money import amounts, money


def test_an_amount_is_written_in_major_units_with_its_currency_and_thousands_separated():
    assert money(123456, "EUR") == "1,234.56 EUR"


def test_a_cost_may_be_rounded_to_whole_units_and_shown_without_a_currency():
    assert money(123456.0, decimals=0) == "1,235"


def test_no_amount_is_a_dash_and_so_are_no_currencies():
    assert money(None) == "-"
    assert amounts({}) == "-"


def test_several_currencies_share_one_line_in_the_order_given():
    assert amounts({"EUR": 1000, "USD": 250}) == "10.00 EUR, 2.50 USD"
