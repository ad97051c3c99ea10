"""Pay on the hosted Checkout page in Chromium with each Stripe test card and bank account."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import stripe

from tests.sandbox.conftest import sdk_client, session_params, test_config
from tests.support.sandbox_server import SandboxServer, start_sandbox

pytestmark = pytest.mark.browser

SUCCESS = "https://shop.example/checkout/success"


@pytest.fixture(scope="module")
def hosted() -> Iterator[SandboxServer]:
    with start_sandbox(test_config()) as server:
        yield server


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    # The shop's success/cancel pages aren't running here; answer them locally.
    page.route(
        "https://shop.example/**", lambda route: route.fulfill(body="<h1>shop</h1>", content_type="text/html")
    )
    yield page
    context.close()


def _session(server: SandboxServer, **overrides: Any) -> stripe.checkout.Session:
    return sdk_client(server.url).v1.checkout.sessions.create(params=session_params(**overrides))


def _events(server: SandboxServer, sid: str) -> list[str]:
    """Event types in order for one session's flow (by session id or its PaymentIntent)."""
    pi = server.state.session_extra[sid]["payment_intent"]
    out = []
    for event in server.state.events.dump():
        obj = event["data"]["object"]
        if obj.get("id") in (sid, pi) or (obj.get("payment_intent") == pi and pi is not None):
            out.append(event["type"])
    return out


def _fill_card(page: Any, number: str, expiry: str = "12 / 34", cvc: str = "123") -> None:
    page.get_by_label("Email").fill("buyer@example.com")
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiration").fill(expiry)
    page.get_by_label("CVC").fill(cvc)
    page.get_by_label("Cardholder name").fill("Jenny Rosen")


def test_page_layout_and_success(page: Any, hosted: SandboxServer) -> None:
    session = _session(hosted)
    page.goto(session.url)
    assert "Stripe simulation" in page.get_by_test_id("sandbox-banner").inner_text()
    assert page.get_by_test_id("total").inner_text() == "€25.00"
    assert "1000 coins" in page.content()
    assert page.get_by_label("Expiration").get_attribute("placeholder") == "MM / YY"
    assert page.get_by_test_id("back").get_attribute("href") == "https://shop.example/checkout/cancel"
    _fill_card(page, "4242 4242 4242 4242")
    page.get_by_role("button", name="Pay").click()
    page.wait_for_url(f"{SUCCESS}?session_id={session.id}")
    assert hosted.state.sessions.get(session.id)["payment_status"] == "paid"
    assert _events(hosted, session.id) == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ]
    page.goto(session.url)
    assert "Payment complete" in page.get_by_test_id("status").inner_text()
    assert "Stripe simulation" in page.get_by_test_id("sandbox-banner").inner_text()


@pytest.mark.parametrize(
    ("card", "message"),
    [
        ("4000000000000002", "Your card was declined."),
        ("4000000000009995", "Your card has insufficient funds."),
        ("4000000000000069", "Your card has expired."),
        ("4000000000000127", "Your card's security code is incorrect."),
        ("4000000000000119", "An error occurred while processing your card. Try again in a little bit."),
    ],
)
def test_declines(page: Any, hosted: SandboxServer, card: str, message: str) -> None:
    session = _session(hosted)
    page.goto(session.url)
    _fill_card(page, card)
    page.get_by_role("button", name="Pay").click()
    assert page.get_by_test_id("payment-error").inner_text() == message
    assert hosted.state.sessions.get(session.id)["status"] == "open"
    assert _events(hosted, session.id) == [
        "payment_intent.created",
        "charge.failed",
        "payment_intent.payment_failed",
    ]


def test_inline_validation_changes_nothing(page: Any, hosted: SandboxServer) -> None:
    session = _session(hosted)
    page.goto(session.url)
    _fill_card(page, "4242 4242 4242 4241", expiry="01 / 20")
    page.get_by_role("button", name="Pay").click()
    assert page.get_by_test_id("error-card_number").inner_text() == "Your card number is invalid."
    assert page.get_by_test_id("error-expiry").inner_text() == "Your card's expiration year is in the past."
    assert _events(hosted, session.id) == []


@pytest.mark.parametrize("card", ["4000002500003155", "4000000000003220"])
def test_three_d_secure_complete_and_fail(page: Any, hosted: SandboxServer, card: str) -> None:
    session = _session(hosted)
    page.goto(session.url)
    _fill_card(page, card)
    page.get_by_role("button", name="Pay").click()
    page.get_by_role("button", name="Fail").click()
    assert "unable to authenticate" in page.get_by_test_id("payment-error").inner_text()
    assert hosted.state.sessions.get(session.id)["status"] == "open"
    _fill_card(page, card)
    page.get_by_role("button", name="Pay").click()
    page.get_by_role("heading", name="3D Secure 2 test page").wait_for()
    page.get_by_role("button", name="Complete").click()
    page.wait_for_url(f"{SUCCESS}?session_id={session.id}")
    assert _events(hosted, session.id) == [
        "payment_intent.created",
        "payment_intent.requires_action",
        "payment_intent.payment_failed",
        "payment_intent.requires_action",
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ]


def test_dispute_card(page: Any, hosted: SandboxServer) -> None:
    session = _session(hosted)
    page.goto(session.url)
    _fill_card(page, "4000 0000 0000 0259")
    page.get_by_role("button", name="Pay").click()
    page.wait_for_url(f"{SUCCESS}?session_id={session.id}")
    pi = hosted.state.session_extra[session.id]["payment_intent"]
    dispute_events = [
        e["type"]
        for e in hosted.state.events.dump()
        if e["type"].startswith("charge.dispute.") and e["data"]["object"]["payment_intent"] == pi
    ]
    assert dispute_events == ["charge.dispute.created", "charge.dispute.funds_withdrawn"]


@pytest.mark.parametrize(
    ("currency", "account", "succeeds"),
    [
        ("eur", "DE89 3704 0044 0532 0130 00", True),
        ("eur", "DE62370400440532013001", False),
        ("usd", "000123456789", True),
        ("usd", "000111111113", False),
    ],
)
def test_bank_debit(page: Any, hosted: SandboxServer, currency: str, account: str, succeeds: bool) -> None:
    items = [
        {
            "quantity": 1,
            "price_data": {"currency": currency, "unit_amount": 5000, "product_data": {"name": "API quota"}},
        }
    ]
    session = _session(hosted, line_items=items)
    page.goto(session.url)
    page.get_by_label("Email").fill("buyer@example.com")
    page.get_by_text("Bank debit", exact=True).click()
    page.get_by_label("Account number").fill(account)
    page.get_by_label("Cardholder name").fill("Jenny Rosen")
    page.get_by_role("button", name="Pay").click()
    page.wait_for_url(f"{SUCCESS}?session_id={session.id}")
    assert hosted.state.sessions.get(session.id)["payment_status"] == "unpaid"
    hosted.control("POST", "clock/advance", seconds=61)
    outcome = (
        "checkout.session.async_payment_succeeded" if succeeds else "checkout.session.async_payment_failed"
    )
    events = _events(hosted, session.id)
    assert events[:4] == [
        "payment_intent.created",
        "payment_intent.processing",
        "charge.pending",
        "checkout.session.completed",
    ]
    assert events[-1] == outcome
    assert hosted.state.sessions.get(session.id)["payment_status"] == ("paid" if succeeds else "unpaid")


def test_expired_and_unknown_sessions(page: Any, hosted: SandboxServer) -> None:
    session = _session(hosted)
    sdk_client(hosted.url).v1.checkout.sessions.expire(session.id)
    page.goto(session.url)
    assert "has expired" in page.get_by_test_id("status").inner_text()
    assert page.query_selector("input[name=card_number]") is None
    response = page.goto(f"{hosted.url}/c/pay/cs_test_unknown")
    assert response is not None
    assert response.status == 404
    assert "Stripe simulation" in page.get_by_test_id("sandbox-banner").inner_text()
