"""Stripe's test card and bank-account numbers and the outcome each one produces."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Decline:
    code: str
    decline_code: str | None
    message: str


@dataclass(frozen=True)
class TestCard:
    brand: str
    funding: str = "credit"
    country: str = "US"
    decline: Decline | None = None
    three_d_secure: bool = False
    dispute: bool = False


_GENERIC = Decline("card_declined", "generic_decline", "Your card was declined.")

CARDS: dict[str, TestCard] = {
    "4242424242424242": TestCard("visa"),
    "4000056655665556": TestCard("visa", funding="debit"),
    "5555555555554444": TestCard("mastercard"),
    "378282246310005": TestCard("amex"),
    "4000000000000002": TestCard("visa", decline=_GENERIC),
    "4000000000009995": TestCard(
        "visa",
        funding="debit",
        decline=Decline("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    ),
    "4000000000000069": TestCard(
        "visa", decline=Decline("expired_card", "expired_card", "Your card has expired.")
    ),
    "4000000000000127": TestCard(
        "visa", decline=Decline("incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect.")
    ),
    "4000000000000119": TestCard(
        "visa",
        decline=Decline(
            "processing_error",
            "processing_error",
            "An error occurred while processing your card. Try again in a little bit.",
        ),
    ),
    "4000002500003155": TestCard("visa", three_d_secure=True),
    "4000000000003220": TestCard("visa", three_d_secure=True),
    "4000000000000259": TestCard("visa", dispute=True),
}

AUTHENTICATION_FAILED = Decline(
    "payment_intent_authentication_failure",
    None,
    "We are unable to authenticate your payment method. Please choose a different payment method and "
    "try again.",
)


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        digit = int(ch)
        if i % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def normalize_number(raw: str) -> str:
    return re.sub(r"[\s-]", "", raw)


def brand_for(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"51", "52", "53", "54", "55"} or number[:1] == "2":
        return "mastercard"
    if number[:2] in {"34", "37"}:
        return "amex"
    return "unknown"


def lookup(number: str) -> TestCard:
    """Known test cards behave as documented; any other Luhn-valid number simply succeeds."""
    return CARDS.get(number) or TestCard(brand_for(number))


@dataclass(frozen=True)
class BankOutcome:
    method: str  # "sepa_debit" or "us_bank_account"
    succeeds: bool
    failure_code: str | None = None
    failure_message: str | None = None


# SEPA Direct Debit (EUR) test IBANs and ACH (USD) test account numbers from Stripe's docs.
BANK_ACCOUNTS: dict[str, BankOutcome] = {
    "DE89370400440532013000": BankOutcome("sepa_debit", True),
    "AT611904300234573201": BankOutcome("sepa_debit", True),
    "DE62370400440532013001": BankOutcome(
        "sepa_debit",
        False,
        "insufficient_funds",
        "The customer's account has insufficient funds to cover this payment.",
    ),
    "AT861904300235473202": BankOutcome(
        "sepa_debit",
        False,
        "insufficient_funds",
        "The customer's account has insufficient funds to cover this payment.",
    ),
    "000123456789": BankOutcome("us_bank_account", True),
    "000111111113": BankOutcome(
        "us_bank_account", False, "account_closed", "The customer's bank account has been closed."
    ),
    "000111111116": BankOutcome(
        "us_bank_account", False, "no_account", "The customer's bank account could not be located."
    ),
}

IBAN = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{10,30}$")
ACH_ACCOUNT = re.compile(r"^\d{4,17}$")


def bank_outcome(account: str, currency: str) -> BankOutcome | None:
    """None when the number is malformed for the currency's debit scheme."""
    account = re.sub(r"\s", "", account).upper()
    method = "sepa_debit" if currency == "eur" else "us_bank_account"
    known = BANK_ACCOUNTS.get(account)
    if known is not None:
        return known if known.method == method else None
    pattern = IBAN if method == "sepa_debit" else ACH_ACCOUNT
    return BankOutcome(method, True) if pattern.match(account) else None
