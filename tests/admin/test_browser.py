"""The console in Chromium against a whole shop and its Stripe sandbox.

One shop per module (SQLite), each test with its own buyers and orders. Refunds go through
the console and ``stripe_gateway`` to the sandbox, whose refund webhook takes the units back;
the sandbox's deliveries are paused to see the refund pending first.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.checkout import status
from app.db.migrate import upgrade
from app.settings import PROJECT_ROOT
from tests.accounts.support import PASSWORD
from tests.admin.support import ADMIN_EMAIL, make_user
from tests.conftest import make_settings
from tests.support.page_review import overflow_problems
from tests.support.shop import Buyer, Shop, run_shop, wait_for

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    tmp = tmp_path_factory.mktemp("admin")
    url = f"sqlite+aiosqlite:///{tmp / 'shop.db'}"
    pricing = tmp / "pricing.toml"
    shutil.copy(PROJECT_ROOT / "pricing.toml", pricing)  # the banner test breaks its own copy
    upgrade(make_settings(tmp, url))
    make_user(make_settings(tmp, url), ADMIN_EMAIL, is_admin=True)
    status.clear_caches()
    with run_shop(tmp, url, pricing_path=pricing) as running:
        yield running


def _sign_in_as_admin(page: Any, shop: Shop, path: str) -> None:
    """Open an admin page signed out: sign-in comes first, then the page itself."""
    page.goto(shop.url + path)
    page.wait_for_url(lambda url: "/sign-in?next=" in url)
    page.fill("#f-email", ADMIN_EMAIL)
    page.fill("#f-password", PASSWORD)
    page.click("form[action='/sign-in'] button.primary")
    page.wait_for_url(shop.url + path)


def _paid(shop: Shop, pack: str = "coins-500") -> tuple[Buyer, dict[str, Any]]:
    buyer = shop.buyer().sign_up()
    sid = buyer.start(pack)
    assert shop.pay(sid, card_number="4242424242424242")["status"] == "succeeded"
    wait_for(lambda: shop.order(sid)["status"] == "paid")
    return buyer, shop.order(sid)


def _in_review(shop: Shop) -> tuple[Buyer, dict[str, Any]]:
    """An order Stripe charged differently from its snapshot: fulfilment leaves it for a human."""
    buyer = shop.buyer().sign_up()
    sid = buyer.start("coins-500")
    shop.rows("UPDATE purchase_order SET amount = 450 WHERE stripe_session_id = :sid", sid=sid)
    assert shop.pay(sid, card_number="4242424242424242")["status"] == "succeeded"
    wait_for(lambda: shop.order(sid)["status"] == "needs_review")
    return buyer, shop.order(sid)


def _refund(page: Any, amount: str, reason: str) -> None:
    page.fill("#f-amount", amount)
    page.fill("#f-refund-reason", reason)
    page.click("form.refund button.primary")
    page.wait_for_selector(".flash-success")


def test_refund_in_part_then_in_full_from_the_order_page(page: Any, shop: Shop) -> None:
    buyer, order = _paid(shop)
    assert buyer.balances()["coins"] == 550
    path = f"/admin/orders/{order['id']}"
    _sign_in_as_admin(page, shop, path)
    assert page.locator("dd.price-paid").inner_text() == "$4.99"

    shop.sandbox.control("POST", "deliveries/pause")
    try:
        _refund(page, "2.50", "buyer asked for half")
        assert "Refund of $2.50 asked for" in page.locator(".flash-success").inner_text()
        assert "Refund pending: $2.50" in page.locator("p.refund-pending").inner_text()
        assert buyer.balances()["coins"] == 550  # nothing taken back before Stripe says so
    finally:
        shop.sandbox.control("POST", "deliveries/resume")
    wait_for(lambda: buyer.balances()["coins"] == 550 - 550 * 250 // 499)
    page.reload()
    assert page.locator("p.refund-pending").count() == 0
    assert page.locator("dd.refunded").inner_text() == "$2.50"
    assert page.locator("tr[data-kind='refund'] td[data-units]").get_attribute("data-units") == "-275"
    sql = "SELECT reason FROM ledger_entry WHERE kind = 'refund' AND order_id = :o"
    reasons = shop.rows(sql, o=order["id"])
    assert reasons == [{"reason": "refund of 2.50 USD"}]  # the customer's page shows it: not "250 USD"

    _refund(page, "", "and the rest")  # empty: all that is left
    wait_for(lambda: buyer.balances()["coins"] == 0)
    page.reload()
    assert page.locator("dd.refunded").inner_text() == "$4.99"
    assert page.locator("form.refund").count() == 0  # nothing left to refund
    # On a phone the ledger table (long idempotency keys) scrolls in its own region, not the page.
    page.set_viewport_size({"width": 375, "height": 800})
    assert overflow_problems(page) == []
    page.set_viewport_size({"width": 1280, "height": 900})

    page.click("nav.admin-nav a[href='/admin/audit']")
    rows = page.locator(f"tr[data-action='order.refund']:has-text('order {order['id']}')")
    assert rows.count() == 2
    assert "buyer asked for half" in rows.nth(1).inner_text()
    assert '"amount":250' in rows.nth(1).inner_text()


def _resolve(page: Any, shop: Shop, order_id: int, resolution: str, reason: str) -> None:
    page.goto(f"{shop.url}/admin/orders/{order_id}")
    page.check(f"form.resolve input[name='resolution'][value='{resolution}']")
    page.fill("#f-resolve-reason", reason)
    page.click("form.resolve button.primary")
    page.wait_for_selector(".flash-success")


def test_a_needs_review_order_resolved_each_way(page: Any, shop: Shop) -> None:
    credited_buyer, credited = _in_review(shop)
    _refunded_buyer, refunded = _in_review(shop)
    closed_buyer, closed = _in_review(shop)
    _sign_in_as_admin(page, shop, "/admin")
    assert int(page.locator("p.needs-review").get_attribute("data-count") or 0) >= 3
    page.click("p.needs-review a")
    listed = page.locator("table.orders tbody tr")
    assert {credited["id"], refunded["id"], closed["id"]} <= {
        int(listed.nth(i).get_attribute("data-order") or 0) for i in range(listed.count())
    }
    assert credited_buyer.balances()["coins"] == 0

    _resolve(page, shop, credited["id"], "credit", "charged a coupon price, honour it")
    assert page.locator("section[data-order]").get_attribute("data-status") == "paid"
    assert credited_buyer.balances()["coins"] == 550

    _resolve(page, shop, refunded["id"], "refund", "wrong price, give the money back")
    assert page.locator("section[data-order]").get_attribute("data-status") == "canceled"
    pi = shop.order(refunded["stripe_session_id"])["stripe_payment_intent_id"]
    assert pi
    wait_for(
        lambda: shop.rows(
            "SELECT id FROM stripe_event WHERE type = 'charge.refunded' AND payload LIKE :pi", pi=f"%{pi}%"
        )
    )

    page.goto(f"{shop.url}/admin/orders/{closed['id']}")
    assert page.locator("p.status-reason").inner_text() == "Stripe charged 4.99 USD, the order says 4.50 USD"
    _resolve(page, shop, closed["id"], "close", "test purchase")
    assert page.locator("section[data-order]").get_attribute("data-status") == "canceled"
    assert closed_buyer.balances()["coins"] == 0
    assert "closed by an admin: test purchase" in page.locator("p.status-reason").inner_text()

    page.goto(shop.url + "/admin/audit")
    for action in ("order.resolve.credit", "order.resolve.refund", "order.resolve.close"):
        assert page.locator(f"tr[data-action='{action}']").count() == 1, action
    made = page.locator("tr[data-action='order.resolve.refund']").inner_text()
    assert '"refund_id":"re_' in made  # the audit row names the refund, and how much it gave back
    assert '"amount":499' in made


def _banners_after_reload(page: Any) -> int:
    page.reload()
    return int(page.locator(".catalogue-banner").count())


def test_a_broken_catalogue_shows_on_every_admin_page(page: Any, shop: Shop) -> None:
    pricing = Path(shop.settings.pricing_path)
    good = pricing.read_text()
    _sign_in_as_admin(page, shop, "/admin")
    assert page.locator(".catalogue-banner").count() == 0
    try:
        pricing.write_text(good.replace('price = "0.99"', 'price = "zero"', 1))
        for path in ("/admin", "/admin/orders", "/admin/audit"):
            page.goto(shop.url + path)
            banner = page.locator(".catalogue-banner")
            wait_for(lambda: _banners_after_reload(page) == 1)  # the file is re-read within a second
            assert "The catalogue file is broken." in banner.inner_text()
            assert "price" in banner.locator("li code").first.inner_text()
        assert page.locator(".catalogue-banner").inner_text().count(shop.app.state["catalogue"].version) == 1
    finally:
        pricing.write_text(good)
    wait_for(lambda: _banners_after_reload(page) == 0)
