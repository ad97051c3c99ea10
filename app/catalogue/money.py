"""Money helpers: integer minor units in, integer minor units out, never floats.

Stripe amounts are integers in the currency's smallest unit, so every price is
converted exactly once, from the decimal string in ``pricing.toml``, with the
exponent Stripe uses for that currency (which is not always CLDR's).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from types import MappingProxyType
from typing import Final

from babel.numbers import format_currency

__all__ = [
    "CURRENCY_EXPONENTS",
    "MAX_AMOUNT_MINOR",
    "MoneyError",
    "exponent",
    "format_money",
    "format_unit_amount",
    "from_minor",
    "is_supported",
    "major_units",
    "minimum_charge",
    "round_unit_price",
    "to_minor",
]


class MoneyError(ValueError):
    """An amount that cannot be represented exactly in the currency."""


def _codes(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Stripe's "zero-decimal" currencies: the amount is already in major units.
_ZERO_DECIMAL: Final = _codes("BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF")
# Stripe's "three-decimal" currencies.
_THREE_DECIMAL: Final = _codes("BHD JOD KWD OMR TND")
# Every other presentment currency Stripe accepts uses two decimals.  Stripe's
# special cases (ISK, HUF, TWD, UGX are charged in whole units on some
# methods) still use these exponents in the API, so they are not special here.
_TWO_DECIMAL: Final = _codes(
    """
    USD AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL
    BSD BWP BYN BZD CAD CDF CHF CNY COP CRC CVE CZK DKK DOP DZD EGP ETB EUR FJD
    FKP GBP GEL GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR ISK JMD KES KGS KHR
    KYD KZT LAK LBP LKR LRD LSL MAD MDL MKD MMK MNT MOP MUR MVR MWK MXN MYR MZN
    NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR
    SEK SGD SHP SLE SOS SRD STD SZL THB TJS TOP TRY TTD TWD TZS UAH UYU UZS WST
    XCD YER ZAR ZMW
    """
)

# Read-only: a typo'd assignment elsewhere must not change how money is scaled.
CURRENCY_EXPONENTS: Final[Mapping[str, int]] = MappingProxyType(
    {
        **dict.fromkeys(_TWO_DECIMAL, 2),
        **dict.fromkeys(_ZERO_DECIMAL, 0),
        **dict.fromkeys(_THREE_DECIMAL, 3),
    }
)

# Stripe's published minimum charge amounts, in major units.  The documented
# table covers the settlement currencies; for the others (marked "fallback")
# we use roughly the USD 0.50 equivalent so an obviously-too-cheap pack is
# caught by `storefront pricing check` rather than by a failed Checkout.
_MINIMUMS_MAJOR: Final[Mapping[str, str]] = {
    "USD": "0.50",
    "AED": "2.00",
    "AUD": "0.50",
    "BGN": "1.00",
    "BRL": "0.50",
    "CAD": "0.50",
    "CHF": "0.50",
    "CZK": "15.00",
    "DKK": "2.50",
    "EUR": "0.50",
    "GBP": "0.30",
    "HKD": "4.00",
    "HUF": "175.00",
    "INR": "0.50",
    "JPY": "50",
    "MXN": "10.00",
    "MYR": "2.00",
    "NOK": "3.00",
    "NZD": "0.50",
    "PLN": "2.00",
    "RON": "2.00",
    "SEK": "3.00",
    "SGD": "0.50",
    "THB": "10.00",
    # fallback: ~USD 0.50 equivalents, not from Stripe's table
    "CNY": "4.00",
    "KWD": "0.200",
    "BHD": "0.200",
    "OMR": "0.200",
    "JOD": "0.400",
    "TND": "1.500",
    "KRW": "700",
}

# Checkout rejects amounts with more than eight digits in minor units.
MAX_AMOUNT_MINOR: Final = 99_999_999


def is_supported(currency: str) -> bool:
    """True if Stripe accepts ``currency`` (ISO 4217, any case)."""
    return currency.upper() in CURRENCY_EXPONENTS


def exponent(currency: str) -> int:
    """Number of decimals Stripe uses for ``currency``."""
    try:
        return CURRENCY_EXPONENTS[currency.upper()]
    except KeyError:
        raise MoneyError(f"unknown currency {currency!r}") from None


def _decimals(value: Decimal) -> int:
    """Decimal places written in ``value`` ("1.50" has 2, "1" has 0)."""
    exp = value.as_tuple().exponent
    assert isinstance(exp, int)  # finite values only; callers check
    return max(0, -exp)


def to_minor(amount: str | Decimal, currency: str) -> int:
    """Convert a major-unit decimal ("99.99") to exact minor units (9999).

    Floats are refused outright: a float price has already lost precision.
    Trailing zeros beyond the exponent ("1.500" USD) are refused too, because
    they usually mean the author had a different currency in mind.
    """
    untyped: object = amount  # typing forbids floats, but TOML data may smuggle one in
    if isinstance(untyped, float):
        raise MoneyError(f"{amount!r} is a float; pass a decimal string such as {str(amount)!r}")
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(amount.strip())
    except InvalidOperation:
        raise MoneyError(f"{amount!r} is not a decimal number") from None
    if not value.is_finite():
        raise MoneyError(f"{amount!r} is not a finite amount")
    code = currency.upper()
    places = exponent(code)
    if _decimals(value) > places:
        raise MoneyError(f"{value} has {_decimals(value)} decimals but {code} allows {places}")
    return int(value.scaleb(places))


def from_minor(minor: int, currency: str) -> Decimal:
    """Convert minor units back to a major-unit Decimal with the currency's scale."""
    places = exponent(currency)
    return Decimal(minor).scaleb(-places).quantize(Decimal(1).scaleb(-places))


def major_units(minor: int | None, currency: str) -> str:
    """``1999, "usd"`` as ``"19.99 USD"``: for texts kept in the database (not localized), which
    an admin reads beside prices, so minor units there would read as a hundred times too much.
    Never raises: what Stripe sent may lack an amount or name a currency we do not know."""
    if minor is None:
        return f"no amount in {currency.upper() or 'no currency'}"
    try:
        return f"{from_minor(minor, currency)} {currency.upper()}"
    except MoneyError:
        return " ".join(part for part in (str(minor), currency.upper(), "(minor units)") if part)


def minimum_charge(currency: str) -> int | None:
    """Smallest chargeable amount in minor units, or None when we don't know it."""
    code = currency.upper()
    major = _MINIMUMS_MAJOR.get(code)
    return None if major is None else to_minor(major, code)


def format_money(minor: int, currency: str, locale: str = "en") -> str:
    """Render minor units for humans, e.g. 9999 USD → "$99.99" / "US$99.99"."""
    return format_currency(from_minor(minor, currency), currency.upper(), locale=locale)


def round_unit_price(value: Decimal, currency: str) -> Decimal:
    """Round a per-unit price for display.

    Keep three significant digits (0.0999, 0.00907) but never fewer decimals
    than the currency has (299.99 stays 299.99, not 300), then drop trailing
    zeros down to the currency's exponent so "0.0500" reads "0.05".
    """
    places = exponent(currency)
    if value == 0:
        return Decimal(0).quantize(Decimal(1).scaleb(-places))
    sig_places = 3 - value.adjusted() - 1  # decimals needed for 3 significant digits
    decimals = max(places, sig_places)
    rounded = value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    while _decimals(rounded) > places and rounded.as_tuple().digits[-1] == 0:
        rounded = rounded.quantize(Decimal(1).scaleb(-(_decimals(rounded) - 1)))
    return rounded


def format_unit_amount(value: Decimal, currency: str, locale: str = "en") -> str:
    """Render a sub-minor-unit amount ("$0.0999") without Babel rounding it away."""
    return format_currency(
        round_unit_price(value, currency), currency.upper(), locale=locale, decimal_quantization=False
    )
