"""Every page a buyer can meet, in both languages, at desktop and phone width, in Chromium.

One buyer owns a purchase in each state (paid with a bonus, partly and fully refunded,
disputed, dispute lost, waiting for a bank, still open, failed, canceled). Each language's
test visits the shop's pages signed out and signed in and, at 1280 and 375 px, checks that
axe-core finds no critical or serious violation, that nothing scrolls sideways and that no
Chinese text is broken one character per line; it saves a screenshot of each for review
(``test-artifacts/screenshots/``). The states themselves are asserted on the way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import stripe

from tests.support.page_review import review_at_widths
from tests.support.sandbox_server import TEST_KEY
from tests.support.shop import Buyer, Shop, fresh_shop, wait_for

DISPUTED_CARD = "4000000000000259"


@dataclass
class Journey:
    shop: Shop
    buyer: Buyer
    orders: dict[str, int]
    """State → order id."""
    sessions: dict[str, str]
    """State → Checkout Session id."""


def _order_id(shop: Shop, sid: str) -> int:
    return int(shop.order(sid)["id"])


def _paid(shop: Shop, buyer: Buyer, pack: str, card: str = "4242424242424242") -> tuple[str, str]:
    sid = buyer.start(pack)
    result = shop.pay(sid, card_number=card)
    assert result["status"] == "succeeded", result
    wait_for(lambda: shop.order(sid)["status"] == "paid")
    return sid, str(result["payment_intent"])


def _dispute_of(shop: Shop, payment_intent: str) -> str:
    def find() -> str | None:
        rows = shop.rows("SELECT payload FROM stripe_event WHERE type = 'charge.dispute.created'")
        for row in rows:
            dispute = json.loads(row["payload"])["data"]["object"]
            if dispute["payment_intent"] == payment_intent:
                return str(dispute["id"])
        return None

    found: str = wait_for(find)
    return found


@pytest.fixture(scope="module")
def journey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Journey]:
    # A bank debit settles only when the test moves the sandbox's clock on (not by itself in 2 s).
    bank_waits = {"async_payment_delay": 600.0}
    tmp = tmp_path_factory.mktemp("buyer-pages")
    with fresh_shop(tmp, sandbox=bank_waits, support_email="help@shop.example") as shop:
        sdk = stripe.StripeClient(TEST_KEY, base_addresses={"api": shop.sandbox.url})
        buyer = shop.buyer("pages@example.com").sign_up()
        key = {"name": "My scraper", "asset": "quota", "cap": "250", "cap_period": "month", "expires": ""}
        assert buyer.post("/account/keys", key).status_code in (200, 303)
        sessions: dict[str, str] = {}

        sessions["failed"] = buyer.start("coins-100")
        shop.pay(sessions["failed"], bank_account="000111111113")
        shop.sandbox.control("POST", "clock/advance", seconds=700)
        wait_for(lambda: shop.order(sessions["failed"])["status"] == "failed", timeout=20)

        sessions["paid"], _ = _paid(shop, buyer, "coins-500")
        sessions["partially_refunded"], pi = _paid(shop, buyer, "coins-500")
        sdk.v1.refunds.create({"payment_intent": pi, "amount": 250})
        sessions["refunded"], pi = _paid(shop, buyer, "coins-100")
        sdk.v1.refunds.create({"payment_intent": pi})
        sessions["disputed"], pi = _paid(shop, buyer, "coins-100", DISPUTED_CARD)
        sessions["dispute_lost"], pi = _paid(shop, buyer, "coins-100", DISPUTED_CARD)
        shop.sandbox.control("POST", f"disputes/{_dispute_of(shop, pi)}/close", outcome="lost")

        sessions["awaiting_payment"] = buyer.start("coins-100")
        assert shop.pay(sessions["awaiting_payment"], bank_account="000123456789")["status"] == "processing"
        sessions["canceled"] = buyer.start("coins-500")
        sessions["open"] = buyer.start("quota-starter")
        shop.flush()
        orders = {state: _order_id(shop, sid) for state, sid in sessions.items()}

        def settled() -> bool:
            page = buyer.client.get("/account").text
            return all(
                f'data-order="{orders[state]}"' in page
                and re.search(
                    rf'data-order="{orders[state]}" data-status="[a-z_]+" data-state="{state}"', page
                )
                is not None
                for state in (
                    "paid",
                    "partially_refunded",
                    "refunded",
                    "disputed",
                    "dispute_lost",
                    "awaiting_payment",
                )
            )

        wait_for(settled, timeout=20)
        yield Journey(shop=shop, buyer=buyer, orders=orders, sessions=sessions)


def _assert_account_states(page: Any, journey: Journey) -> None:
    """Refunds and disputes read as words, the refunded money is shown, no "+0" rows, orders named."""
    rows = page.locator("table.purchases tbody tr")
    states = {
        int(rows.nth(i).get_attribute("data-order")): rows.nth(i).get_attribute("data-state")
        for i in range(rows.count())
    }
    for state in ("paid", "partially_refunded", "refunded", "disputed", "dispute_lost", "awaiting_payment"):
        assert states[journey.orders[state]] == state, states
    partial = page.locator(
        f'tr[data-order="{journey.orders["partially_refunded"]}"] .state-note'
    ).inner_text()
    assert "2.50" in partial, partial
    assert "4.99" in partial, partial
    changes = page.locator("table.entries tbody tr[data-entry] td.change").all_inner_texts()
    assert changes, "no ledger rows"
    assert not [c for c in changes if re.match(r"^\+?0\b", c.strip())], changes
    details = page.locator("table.entries tbody tr[data-entry] td:last-child").all_inner_texts()
    assert all(re.search(r"\d", d) for d in details), details


def _visit(page: Any, url: str, name: str, problems: list[str]) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(url)
    problems += review_at_widths(page, name)


def _one_heading_one_action(page: Any) -> None:
    main = page.locator("main")
    assert main.locator("h1").count() == 1
    assert main.locator("button.primary, a.button").count() == 1


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_buyer_page_is_accessible_fits_a_phone_and_shows_clear_states(
    page: Any, journey: Journey, lang: str
) -> None:
    shop, buyer = journey.shop, journey.buyer
    base = shop.url
    problems: list[str] = []
    page.context.add_cookies([{"name": "lang", "value": lang, "url": base}])

    for path, name in [
        ("/", "pricing"),
        ("/sign-in", "sign-in"),
        ("/sign-up", "sign-up"),
        ("/terms", "terms"),
        ("/privacy", "privacy"),
        ("/refunds", "refunds"),
        ("/no-such-page", "404-signed-out"),
        ("/sign-in/link/not-a-real-link", "sign-in-link-invalid"),
        ("/forgot-password", "forgot-password"),
        ("/reset-password/not-a-real-link", "reset-password-invalid"),
    ]:
        _visit(page, base + path, f"{lang}-{name}", problems)
    # The shop's identity and its policies, in the footer of every page.
    footer = page.locator("footer")
    assert footer.locator("a[href='/terms']").count() == 1
    assert footer.locator("a[href='mailto:help@shop.example']").count() == 1

    page.context.add_cookies(
        [
            {"name": c.name, "value": c.value, "url": base}
            for c in buyer.client.cookies.jar
            if c.name != "lang"
        ]
    )
    _visit(page, base + "/", f"{lang}-pricing-signed-in", problems)
    _visit(page, base + "/account", f"{lang}-account", problems)
    _assert_account_states(page, journey)
    assert page.locator("table.keys tbody tr").count() == 1

    for state in ("paid", "awaiting_payment", "open", "failed"):
        _visit(
            page,
            f"{base}/checkout/success?session_id={journey.sessions[state]}",
            f"{lang}-success-{state}",
            problems,
        )
        shown = page.locator("#order-status")
        assert shown.get_attribute("data-status") == state
        assert shown.locator(".state-icon svg").count() == 1
        if state == "paid":
            assert "50" in shown.locator(".bonus-line").inner_text()
            receipt = shown.locator("a.receipt").get_attribute("href") or ""
            assert "/receipts/" in receipt, receipt
        if state in ("awaiting_payment", "open"):
            assert shown.locator(".steps, .progress").count() == 1

    failed = f"{base}/checkout/failed?order={journey.orders['failed']}"
    _visit(page, failed, f"{lang}-payment-failed", problems)
    _visit(page, f"{base}/checkout/cancel?order={journey.orders['open']}", f"{lang}-cancel-ask", problems)
    _one_heading_one_action(page)
    cancel_url = shop.session(journey.sessions["canceled"])["cancel_url"]
    _visit(page, cancel_url, f"{lang}-cancel-canceled", problems)
    _one_heading_one_action(page)
    assert page.locator("#order-status").get_attribute("data-status") == "canceled"

    # Development's mailbox (the receipts of the purchases above) fits a phone like the rest.
    _visit(page, base + "/dev/mail", f"{lang}-dev-mail", problems)
    page.locator("table.mail-list a").first.click()
    problems += review_at_widths(page, f"{lang}-dev-mail-message")

    # An error page keeps the signed-in buyer's header (and a working sign-out form).
    _visit(page, base + "/no-such-page", f"{lang}-404-signed-in", problems)
    assert page.locator("header a[href='/account']").count() == 1
    assert page.locator("header form[action='/sign-out'] input[name='_csrf_token']").get_attribute("value")

    assert not problems, "\n".join(problems)
