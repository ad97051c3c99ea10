from __future__ import annotations

from decimal import Decimal

import pytest

from app.catalogue.money import (
    CURRENCY_EXPONENTS,
    MoneyError,
    exponent,
    format_money,
    format_unit_amount,
    from_minor,
    major_units,
    minimum_charge,
    round_unit_price,
    to_minor,
)


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("500", "JPY", 500),
        ("99.99", "USD", 9999),
        ("1.250", "KWD", 1250),
        ("0.5", "usd", 50),
        ("68.00", "CNY", 6800),
        ("1", "EUR", 100),
        (Decimal("12.3"), "BHD", 12300),
    ],
)
def test_to_minor(amount: str | Decimal, currency: str, minor: int) -> None:
    assert to_minor(amount, currency) == minor
    assert isinstance(to_minor(amount, currency), int)


@pytest.mark.parametrize(
    ("amount", "currency", "message"),
    [
        ("500.5", "JPY", "has 1 decimals but JPY allows 0"),
        ("99.999", "USD", "has 3 decimals but USD allows 2"),
        ("1.2505", "KWD", "has 4 decimals but KWD allows 3"),
        ("abc", "USD", "not a decimal number"),
        ("NaN", "USD", "not a finite amount"),
        ("1", "XXX", "unknown currency"),
    ],
)
def test_to_minor_errors(amount: str, currency: str, message: str) -> None:
    with pytest.raises(MoneyError, match=message):
        to_minor(amount, currency)


def test_to_minor_refuses_float() -> None:
    with pytest.raises(MoneyError, match="float"):
        to_minor(9.99, "USD")  # type: ignore[arg-type]


def test_from_minor_keeps_currency_scale() -> None:
    assert from_minor(500, "JPY") == Decimal("500")
    assert str(from_minor(9999, "USD")) == "99.99"
    assert str(from_minor(100, "USD")) == "1.00"
    assert str(from_minor(1250, "KWD")) == "1.250"


def test_round_trip_all_currencies() -> None:
    for code in CURRENCY_EXPONENTS:
        assert to_minor(from_minor(123456, code), code) == 123456


def test_exponent_table() -> None:
    for code in [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]:
        assert exponent(code) == 0
    for code in ["BHD", "JOD", "KWD", "OMR", "TND"]:
        assert exponent(code) == 3
    assert exponent("usd") == exponent("EUR") == exponent("CNY") == 2


def test_minimum_charge() -> None:
    assert minimum_charge("USD") == 50
    assert minimum_charge("GBP") == 30
    assert minimum_charge("JPY") == 50
    assert minimum_charge("HUF") == 17500
    assert minimum_charge("CNY") == 400  # documented fallback
    assert minimum_charge("KWD") == 200  # documented fallback
    assert minimum_charge("ZAR") is None


@pytest.mark.parametrize(
    ("minor", "currency", "locale", "text"),
    [
        (9999, "USD", "en", "$99.99"),
        (9999, "USD", "zh_Hans_CN", "US$99.99"),
        (6800, "CNY", "zh_Hans_CN", "¥68.00"),
        (6800, "CNY", "en", "CN¥68.00"),
        (500, "JPY", "en", "¥500"),
        (1250, "KWD", "en", "KWD1.250"),
    ],
)
def test_format_money(minor: int, currency: str, locale: str, text: str) -> None:
    assert format_money(minor, currency, locale) == text


@pytest.mark.parametrize(
    ("value", "currency", "shown"),
    [
        (Decimal("9.99") / 100, "USD", "0.0999"),
        (Decimal("99.99") / 1200, "USD", "0.0833"),
        (Decimal("4.99") / 550, "USD", "0.00907"),
        (Decimal("49.99") / 1000, "USD", "0.05"),  # 0.0500 → trailing zeros dropped
        (Decimal("299.99") / 3, "USD", "100.00"),  # never fewer decimals than USD has
        (Decimal("500") / 3, "JPY", "167"),
        (Decimal("68.00") / 1000, "CNY", "0.068"),
    ],
)
def test_round_unit_price(value: Decimal, currency: str, shown: str) -> None:
    assert str(round_unit_price(value, currency)) == shown


def test_format_unit_amount_is_not_rounded_to_cents() -> None:
    assert format_unit_amount(Decimal("0.0999"), "USD") == "$0.0999"
    assert format_unit_amount(Decimal("0.0999"), "USD", "zh_Hans_CN") == "US$0.0999"


def test_major_units_for_stored_texts_never_raise() -> None:
    """Fulfilment writes what Stripe charged into the order's reason, whatever Stripe sent."""
    assert major_units(1999, "usd") == "19.99 USD"
    assert major_units(500, "JPY") == "500 JPY"
    assert major_units(None, "usd") == "no amount in USD"
    assert major_units(1999, "") == "1999 (minor units)"
    assert major_units(7, "xyz") == "7 XYZ (minor units)"
