"""A buyer in a real browser: sign up, buy, pay on the (sandbox) Stripe page, see the balance.

Only the first scenario does everything through the browser; the others sign up and start
the purchase over HTTP and hand the browser the buyer's cookies for the parts that matter.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import stripe

from tests.support.sandbox_server import TEST_KEY
from tests.support.shop import PASSWORD, Buyer, Shop, filed_receipt, fresh_shop, session_id_of, wait_for

pytestmark = pytest.mark.browser


def _fill_card(page: Any, number: str) -> None:
    page.get_by_label("Email").fill("buyer@example.com")
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiration").fill("12 / 34")
    page.get_by_label("CVC").fill("123")
    page.get_by_label("Cardholder name").fill("Jenny Rosen")
    page.get_by_role("button", name="Pay").click()


def _as_browser(page: Any, shop: Shop, buyer: Buyer) -> None:
    """Give the browser this buyer's cookies (signed in over HTTP)."""
    page.context.add_cookies(
        [{"name": c.name, "value": c.value, "url": shop.url} for c in buyer.client.cookies.jar]
    )


def _checkout(page: Any, shop: Shop, pack: str = "coins-100") -> tuple[Buyer, str]:
    buyer = shop.buyer().sign_up()
    response = buyer.buy(pack)
    assert response.status_code == 303
    _as_browser(page, shop, buyer)
    page.goto(response.headers["location"])
    return buyer, session_id_of(response.headers["location"])


def test_sign_up_buy_pay_and_see_the_balance(page: Any, e2e_shop: Shop) -> None:
    shop = e2e_shop
    page.goto(shop.url + "/sign-up")
    page.get_by_label("Email").fill("first-buyer@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/account$"))
    assert "No purchases yet." in page.content()

    page.goto(shop.url + "/")
    page.locator("#pack-coins-500 button[type=submit]").click()
    page.wait_for_url(re.compile(r"/c/pay/cs_"))
    assert "$4.99" in page.get_by_test_id("total").inner_text()
    _fill_card(page, "4242 4242 4242 4242")

    page.wait_for_url(re.compile(r"/checkout/success\?session_id=cs_"))
    # The fragment polls until the webhook (or the page's own check) credits the order.
    page.locator('#order-status[data-status="paid"]').wait_for(timeout=15_000)
    assert "We added 550 coins to your balance." in page.locator("#order-status").inner_text()

    page.goto(shop.url + "/account")
    assert page.locator('tr[data-asset="coins"] td.available').get_attribute("data-units") == "550"
    assert page.locator('tr[data-asset="quota"] td.available').get_attribute("data-units") == "0"
    assert "Bag of coins" in page.locator("table.purchases").inner_text()


def test_declined_card_credits_nothing(page: Any, e2e_shop: Shop) -> None:
    buyer, sid = _checkout(page, e2e_shop)
    _fill_card(page, "4000 0000 0000 0002")
    assert "declined" in page.get_by_test_id("payment-error").inner_text().lower()
    assert buyer.status(sid) == "open"
    assert buyer.balances()["coins"] == 0


def test_three_d_secure_completed(page: Any, e2e_shop: Shop) -> None:
    buyer, _sid = _checkout(page, e2e_shop)
    _fill_card(page, "4000 0025 0000 3155")
    page.get_by_test_id("3ds-complete").click()
    page.wait_for_url(re.compile(r"/checkout/success"))
    page.locator('#order-status[data-status="paid"]').wait_for(timeout=15_000)
    assert buyer.balances()["coins"] == 100


def test_three_d_secure_failed(page: Any, e2e_shop: Shop) -> None:
    buyer, sid = _checkout(page, e2e_shop)
    _fill_card(page, "4000 0025 0000 3155")
    page.get_by_test_id("3ds-fail").click()
    page.get_by_test_id("payment-error").wait_for()
    assert buyer.status(sid) == "open"
    assert buyer.balances()["coins"] == 0


def test_cancel_from_the_payment_page(page: Any, e2e_shop: Shop) -> None:
    buyer, sid = _checkout(page, e2e_shop)
    page.get_by_test_id("back").click()
    page.wait_for_url(re.compile(r"/checkout/cancel\?order=\d+"))
    assert page.locator("#order-status").get_attribute("data-status") == "canceled"
    page.get_by_role("button", name="Buy again").click()
    page.wait_for_url(re.compile(r"/c/pay/cs_"))
    assert session_id_of(page.url) != sid
    assert buyer.balances()["coins"] == 0


@pytest.mark.parametrize(
    ("account", "final", "units"), [("000123456789", "paid", 100), ("000111111113", "failed", 0)]
)
def test_bank_debit(page: Any, e2e_shop: Shop, account: str, final: str, units: int) -> None:
    shop = e2e_shop
    buyer, _sid = _checkout(page, shop)
    page.locator("label[for=m-bank]").click()
    page.get_by_label("Email").fill("buyer@example.com")
    page.locator("#account").fill(account)
    page.get_by_label("Cardholder name").fill("Jenny Rosen")
    page.get_by_role("button", name="Pay").click()
    page.wait_for_url(re.compile(r"/checkout/success"))
    page.locator('#order-status[data-status="awaiting_payment"]').wait_for(timeout=15_000)
    shop.sandbox.control("POST", "clock/advance", seconds=60)
    page.locator(f'#order-status[data-status="{final}"]').wait_for(timeout=20_000)
    assert buyer.balances()["coins"] == units


def test_a_promotion_code_and_automatic_tax_on_the_hosted_page(page: Any, tmp_path: Path) -> None:
    """One whole flow: the code field and the country on Stripe's page, credited once, and the
    discount and the tax on the order, the account page and the receipt."""
    with fresh_shop(tmp_path, automatic_tax=True) as shop:
        sdk = stripe.StripeClient(TEST_KEY, base_addresses={"api": shop.sandbox.url})
        coupon = sdk.v1.coupons.create({"percent_off": 50, "duration": "once"})
        sdk.v1.promotion_codes.create({"promotion": {"type": "coupon", "coupon": coupon.id}, "code": "HALF"})
        buyer, sid = _checkout(page, shop, "coins-500")
        assert page.get_by_label("Email").input_value() == buyer.email  # known from the Customer

        page.get_by_label("Promotion code").fill("HALF")
        page.get_by_test_id("apply-code").click()
        page.get_by_test_id("discount").filter(has_text="$2.50").wait_for()
        page.get_by_label("Country or region").select_option("AT")
        page.get_by_test_id("update").click()
        # $4.99 less 50 % ($2.50), then Austria's 20 % on the $2.49 left ($0.50), added on top.
        page.get_by_test_id("tax").filter(has_text="$0.50").wait_for()
        assert "$2.99" in page.get_by_test_id("total").inner_text()
        page.get_by_label("Card number").fill("4242 4242 4242 4242")
        page.get_by_label("Expiration").fill("12 / 34")
        page.get_by_label("CVC").fill("123")
        page.get_by_label("Cardholder name").fill("Jenny Rosen")
        page.get_by_test_id("pay").click()

        page.wait_for_url(re.compile(r"/checkout/success\?session_id=cs_"))
        page.locator('#order-status[data-status="paid"]').wait_for(timeout=15_000)
        shop.flush()  # the webhook was answered too: still one credit
        order = shop.order(sid)
        assert (order["amount"], order["amount_discount"], order["amount_tax"], order["amount_paid"]) == (
            499,
            250,
            50,
            299,
        )
        assert shop.rows("SELECT units FROM ledger_entry WHERE order_id = :o", o=order["id"]) == [
            {"units": 550}
        ]

        page.goto(shop.url + "/account")
        assert page.locator('tr[data-asset="coins"] td.available').get_attribute("data-units") == "550"
        purchase = page.locator(f"#order-{order['id']}").inner_text()
        assert "$2.99" in purchase
        assert "$2.50 off" in purchase
        assert "incl. $0.50 tax" in purchase
        receipt = wait_for(lambda: filed_receipt(shop, order["id"]))
        assert "Discount: -$2.50" in receipt
        assert "Tax: $0.50" in receipt
        assert "Amount paid: $2.99" in receipt
