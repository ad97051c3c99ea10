"""After the money moved: refunds made through the SDK and disputes take units back (or not).

Each scenario ends in the browser: the buyer's account page, as Chromium renders it, shows
the balance (and held units) the ledger arrived at.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import stripe

from tests.support.sandbox_server import TEST_KEY
from tests.support.shop import Buyer, Shop, wait_for


@pytest.fixture
def sdk(e2e_shop: Shop) -> stripe.StripeClient:
    return stripe.StripeClient(TEST_KEY, base_addresses={"api": e2e_shop.sandbox.url})


def _paid(shop: Shop, pack: str = "coins-500", card: str = "4242424242424242") -> tuple[Buyer, str, str]:
    buyer = shop.buyer().sign_up()
    sid = buyer.start(pack)
    result = shop.pay(sid, card_number=card)
    assert result["status"] == "succeeded", result
    wait_for(lambda: shop.order(sid)["status"] == "paid")
    return buyer, sid, str(result["payment_intent"])


def _seen_in_browser(page: Any, shop: Shop, buyer: Buyer) -> tuple[int, int]:
    """(available, held) coins on the account page as the buyer's browser shows it."""
    page.context.add_cookies(
        [{"name": c.name, "value": c.value, "url": shop.url} for c in buyer.client.cookies.jar]
    )
    page.goto(shop.url + "/account")
    row = page.locator('tr[data-asset="coins"]')
    available = row.locator("td.available").get_attribute("data-units")
    held = row.locator("td.held").get_attribute("data-units")
    assert available is not None
    assert held is not None
    return int(available), int(held)


def _held(buyer: Buyer) -> int:
    import re

    page = buyer.client.get("/account").text
    found = re.search(r'<tr data-asset="coins">.*?class="held" data-units="(-?\d+)"', page, re.S)
    assert found
    return int(found.group(1))


@pytest.mark.browser
def test_full_refund_takes_everything_back(page: Any, e2e_shop: Shop, sdk: stripe.StripeClient) -> None:
    buyer, _sid, pi = _paid(e2e_shop)
    assert buyer.balances()["coins"] == 550
    sdk.v1.refunds.create({"payment_intent": pi})
    wait_for(lambda: buyer.balances()["coins"] == 0)
    e2e_shop.flush()
    assert buyer.balances()["coins"] == 0
    assert "Refund" in buyer.client.get("/account").text
    assert _seen_in_browser(page, e2e_shop, buyer) == (0, 0)


@pytest.mark.browser
def test_partial_refund_takes_back_its_share(page: Any, e2e_shop: Shop, sdk: stripe.StripeClient) -> None:
    buyer, _sid, pi = _paid(e2e_shop)
    sdk.v1.refunds.create({"payment_intent": pi, "amount": 250})  # of 499
    wait_for(lambda: buyer.balances()["coins"] == 550 - 550 * 250 // 499)
    e2e_shop.flush()
    assert buyer.balances()["coins"] == 275
    assert _seen_in_browser(page, e2e_shop, buyer) == (275, 0)


@pytest.mark.browser
@pytest.mark.parametrize(("outcome", "after"), [("won", 550), ("lost", 0)])
def test_dispute(page: Any, e2e_shop: Shop, sdk: stripe.StripeClient, outcome: str, after: int) -> None:
    buyer, _sid, pi = _paid(e2e_shop, card="4000000000000259")  # this card is always disputed
    e2e_shop.flush()
    wait_for(lambda: _held(buyer) == 550)
    assert buyer.balances()["coins"] == 0
    assert "550 coins held by a dispute" in buyer.client.get("/account").text
    assert _seen_in_browser(page, e2e_shop, buyer) == (0, 550)
    # The shop stored Stripe's dispute event; its object names the dispute to close.
    rows = e2e_shop.rows("SELECT payload FROM stripe_event WHERE type = 'charge.dispute.created'")
    disputes = {
        d["id"]
        for d in (json.loads(r["payload"])["data"]["object"] for r in rows)
        if d["payment_intent"] == pi
    }
    assert len(disputes) == 1
    dispute = sdk.v1.disputes.retrieve(disputes.pop())
    assert dispute.status == "needs_response"
    e2e_shop.sandbox.control("POST", f"disputes/{dispute.id}/close", outcome=outcome)
    wait_for(lambda: _held(buyer) == 0 and buyer.balances()["coins"] == after)
    e2e_shop.flush()
    assert buyer.balances()["coins"] == after
    assert _seen_in_browser(page, e2e_shop, buyer) == (after, 0)
