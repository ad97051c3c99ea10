"""Promotion codes and automatic tax on a real purchase through the sandbox: what the order
records, what is credited (once), and what a refund of a discounted order takes back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import stripe

from app.catalogue import CatalogueHolder
from app.checkout.status import status_context
from app.money.models import Order, OrderStatus
from app.settings import PROJECT_ROOT
from tests.support.sandbox_server import TEST_KEY
from tests.support.shop import Shop, filed_receipt, run_shop, wait_for


def _sdk(shop: Shop) -> stripe.StripeClient:
    return stripe.StripeClient(TEST_KEY, base_addresses={"api": shop.sandbox.url})


def _promotion_code(shop: Shop, code: str, **coupon: Any) -> None:
    made = _sdk(shop).v1.coupons.create({"duration": "once", **coupon})  # type: ignore[arg-type]
    _sdk(shop).v1.promotion_codes.create({"promotion": {"type": "coupon", "coupon": made.id}, "code": code})  # type: ignore[arg-type]


def _paid_order(shop: Shop, sid: str) -> dict[str, Any]:
    paid = shop.pay(sid, card_number="4242424242424242")
    assert paid["status"] == "succeeded", paid
    order: dict[str, Any] = wait_for(lambda: (row := shop.order(sid))["status"] == "paid" and row)
    return order


def test_a_promotion_code_is_recorded_credited_once_and_refunds_take_back_in_proportion(shop: Shop) -> None:
    _promotion_code(shop, "HALF", percent_off=50)
    buyer = shop.buyer().sign_up()
    plain = buyer.start("coins-100")  # no promotion_codes on this pack: no code field
    assert not shop.session(plain)["allow_promotion_codes"]

    sid = buyer.start("coins-500")
    assert shop.session(sid)["allow_promotion_codes"] is True
    assert shop.sandbox.call(lambda: shop.sandbox.state.set_promotion_code(sid, "HALF")) is None
    session = shop.session(sid)
    assert (session["amount_subtotal"], session["total_details"]["amount_discount"]) == (499, 250)
    assert session["amount_total"] == 249

    order = _paid_order(shop, sid)
    assert (order["amount"], order["amount_discount"], order["amount_tax"], order["amount_paid"]) == (
        499,
        250,
        0,
        249,
    )
    shop.flush()  # the webhook has been answered too
    shop.reconcile()  # and reconciliation looked again: still one credit
    credits = shop.rows("SELECT units, amount FROM ledger_entry WHERE order_id = :o", o=order["id"])
    assert credits == [{"units": 550, "amount": 249}]
    assert buyer.balances()["coins"] == 550
    account = buyer.client.get("/account").text
    assert "$2.49" in account
    assert "$2.50 off" in account

    # Half of what was paid (not half the list price) takes back half the units.
    _sdk(shop).v1.refunds.create({"payment_intent": str(order["stripe_payment_intent_id"]), "amount": 124})
    # 550 * 124 // 249 = 273 (rounded down: the buyer keeps the fraction until the rest is refunded)
    wait_for(lambda: buyer.balances()["coins"] == 550 - 273)
    _sdk(shop).v1.refunds.create({"payment_intent": str(order["stripe_payment_intent_id"])})
    wait_for(lambda: buyer.balances().get("coins") == 0)
    shop.flush()
    assert buyer.balances()["coins"] == 0


def test_a_charge_that_does_not_follow_from_the_snapshot_is_reviewed(shop: Shop) -> None:
    buyer = shop.buyer().sign_up()
    sid = buyer.start("coins-500")
    order = shop.order(sid)
    shop.rows("UPDATE purchase_order SET amount = 599 WHERE id = :o", o=order["id"])  # snapshot ≠ subtotal
    shop.pay(sid, card_number="4242424242424242")
    reviewed = wait_for(lambda: (row := shop.order(sid))["status"] == "needs_review" and row)
    assert reviewed["status_reason"] == "Stripe charged 4.99 USD, the order says 5.99 USD"
    assert shop.rows("SELECT id FROM ledger_entry WHERE order_id = :o", o=order["id"]) == []


@pytest.mark.parametrize(("inclusive", "tax", "paid"), [(False, 100, 599), (True, 83, 499)])
def test_automatic_tax_is_asked_for_and_recorded(
    sqlite_url: str, sqlite_settings: object, tmp_path: Path, inclusive: bool, tax: int, paid: int
) -> None:
    pricing = tmp_path / "pricing.toml"
    text = (PROJECT_ROOT / "pricing.toml").read_text()
    if inclusive:
        text = text.replace("promotion_codes = true\n", "promotion_codes = true\ntax_inclusive = true\n", 1)
    pricing.write_text(text)
    with run_shop(tmp_path, sqlite_url, automatic_tax=True, pricing_path=pricing) as shop:
        buyer = shop.buyer().sign_up()
        sid = buyer.start("coins-500")
        session = shop.session(sid)
        assert session["automatic_tax"]["enabled"] is True
        item = shop.sandbox.call(lambda: dict(shop.sandbox.state.line_items[sid][0]))
        assert item["price"]["tax_behavior"] == ("inclusive" if inclusive else "exclusive")
        shop.sandbox.call(lambda: shop.sandbox.state.tax_location(sid, "AT"))  # 20 %
        order = _paid_order(shop, sid)
        assert (order["amount"], order["amount_tax"], order["amount_paid"]) == (499, tax, paid)
        assert f"incl. ${tax / 100:.2f} tax" in buyer.client.get("/account").text
        assert buyer.balances()["coins"] == 550
        # The receipt (development's mail: files) shows the price, the tax and what was paid.
        receipt = wait_for(lambda: filed_receipt(shop, order["id"]))
        assert f"Tax: ${tax / 100:.2f}" in receipt
        assert f"Amount paid: ${paid / 100:.2f}" in receipt


def test_the_success_page_names_what_was_paid_not_the_list_price() -> None:
    """Regression: the success page's order line said the pack's $4.99 after the buyer paid
    $2.99 (half off with a code, tax on top), unlike the account page and the receipt."""
    catalogue = CatalogueHolder(PROJECT_ROOT / "pricing.toml").catalogue
    order = Order(
        id=3,
        user_id=1,
        pack_id="coins-500",
        pack_name="Coin pouch",
        asset="coins",
        units=500,
        bonus=50,
        amount=499,
        currency="usd",
        status=OrderStatus.PAID,
        amount_discount=250,
        amount_tax=50,
        amount_paid=299,
    )
    assert status_context(order, catalogue, "en", balance_after=550)["price_text"] == "$2.99"
    order.amount_paid = None  # not paid yet (or paid before 0010): the snapshot price
    assert status_context(order, catalogue, "en", balance_after=550)["price_text"] == "$4.99"


def test_a_hundred_percent_code_completes_with_nothing_to_pay_and_is_credited_once(shop: Shop) -> None:
    """Regression: Stripe completes a session whose total is 0 as ``no_payment_required`` with no
    PaymentIntent; the sandbox said ``paid`` and made one, and fulfilment credited only ``paid``,
    so against Stripe a free code's order was never credited."""
    _promotion_code(shop, "FREE", percent_off=100)
    buyer = shop.buyer().sign_up()
    sid = buyer.start("coins-500")
    assert shop.sandbox.call(lambda: shop.sandbox.state.set_promotion_code(sid, "FREE")) is None
    assert shop.pay(sid, card_number="4242424242424242")["status"] == "succeeded"
    session = shop.session(sid)
    assert (session["status"], session["payment_status"], session["payment_intent"]) == (
        "complete",
        "no_payment_required",
        None,
    )
    order = wait_for(lambda: (row := shop.order(sid))["status"] == "paid" and row)
    assert (order["amount_discount"], order["amount_tax"], order["amount_paid"]) == (499, 0, 0)
    shop.flush()
    shop.reconcile()
    assert shop.rows("SELECT units, amount FROM ledger_entry WHERE order_id = :o", o=order["id"]) == [
        {"units": 550, "amount": 0}
    ]
    assert buyer.balances()["coins"] == 550
