"""A purchase's state for the buyer, read from its order and the refund and dispute entries of that order."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app import i18n
from app.accounts.account_page import purchase_state, shown_to_buyer
from app.money.ledger import EntryRow
from app.money.models import Order


def _order(status: str = "paid", amount: int = 499, currency: str = "usd") -> Order:
    return Order(
        id=7,
        user_id=1,
        pack_id="coins-500",
        pack_name="Bag of coins",
        asset="coins",
        units=500,
        bonus=50,
        amount=amount,
        currency=currency,
        status=status,
    )


@pytest.mark.parametrize(
    ("reversals", "key", "note"),
    [
        ([], "paid", ""),
        (
            [("refund", 250, "refund:re_1"), ("refund_total", 250, "refund:ch_1:total:250")],
            "partially_refunded",
            "$2.50 of $4.99 refunded",
        ),
        # Two refunds by id, the charge's total lagging behind: the larger count wins.
        (
            [("refund", 100, "refund:re_1"), ("refund", 150, "refund:re_2"), ("refund_total", 100, "k")],
            "partially_refunded",
            "$2.50 of $4.99 refunded",
        ),
        ([("refund_total", 499, "refund:ch_1:total:499")], "refunded", "$4.99 of $4.99 refunded"),
        ([("dispute_hold", 499, "dispute_hold:dp_1")], "disputed", ""),
        (
            [("dispute_hold", 499, "dispute_hold:dp_1"), ("dispute_release", 499, "dispute_release:dp_1")],
            "dispute_won",
            "",
        ),
        (
            [("dispute_hold", 499, "dispute_hold:dp_1"), ("dispute_loss", 499, "dispute_loss:dp_1")],
            "dispute_lost",
            "",
        ),
        # A second dispute still open outweighs a first one that ended.
        (
            [
                ("dispute_hold", 100, "dispute_hold:dp_1"),
                ("dispute_loss", 100, "dispute_loss:dp_1"),
                ("dispute_hold", 100, "dispute_hold:dp_2"),
            ],
            "disputed",
            "",
        ),
    ],
)
def test_paid_purchase_states(reversals: list[tuple[str, int | None, str]], key: str, note: str) -> None:
    i18n.set_locale("en")
    state = purchase_state(_order(), reversals, "en")
    assert (state.key, state.note) == (key, note)
    assert state.label


def test_refunded_money_follows_the_currency_exponent() -> None:
    i18n.set_locale("en")
    yen = purchase_state(_order(amount=1000, currency="jpy"), [("refund", 300, "refund:re_1")], "en")
    assert yen.note == "¥300 of ¥1,000 refunded"
    i18n.set_locale("zh")
    zh = purchase_state(_order(), [("refund", 250, "refund:re_1")], "zh")
    assert (zh.label, zh.note) == ("部分退款", "US$4.99 中已退款 US$2.50")
    i18n.set_locale("en")


def test_unpaid_orders_keep_their_own_state() -> None:
    i18n.set_locale("en")
    assert purchase_state(_order("awaiting_payment"), [], "en").label == "Waiting for bank payment"


def test_rows_that_change_nothing_are_not_shown() -> None:
    def row(units: int, held: int) -> EntryRow:
        return EntryRow(1, 1, "coins", "refund_total", units, held, 0, 0, 7, 250, "k", "", datetime.now(UTC))

    assert not shown_to_buyer(row(0, 0))
    assert shown_to_buyer(row(-137, 0))
    assert shown_to_buyer(row(0, -100))  # a lost dispute lets held units go
