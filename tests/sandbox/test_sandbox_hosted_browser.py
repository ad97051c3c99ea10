"""The hosted payment page in Chromium: both languages, phone and desktop width, axe-core clean,
and a whole purchase with a promotion code and automatic tax.

axe-core runs through `axe-playwright-python` (it bundles axe); a critical or serious violation
fails the test. Screenshots land in the test's tmp directory for review, not pixel comparison.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe
from axe_playwright_python.sync_playwright import Axe

from tests.sandbox.conftest import sdk_client, session_params, test_config
from tests.support.sandbox_server import SandboxServer, start_sandbox

pytestmark = pytest.mark.browser

SUCCESS = "https://shop.example/checkout/success"
WIDTHS = (1280, 375)


@pytest.fixture
def hosted() -> Iterator[SandboxServer]:
    with start_sandbox(test_config()) as server:
        yield server


def _tab(browser: Any, width: int, locale: str) -> Any:
    context = browser.new_context(viewport={"width": width, "height": 900}, locale=locale)
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    tab.route("https://shop.example/**", lambda r: r.fulfill(body="<h1>shop</h1>", content_type="text/html"))
    return tab


def _serious(tab: Any) -> list[str]:
    """Critical and serious axe-core violations on the current page, one line each."""
    results = Axe().run(tab)
    assert results.response["testEngine"]["name"] == "axe-core"
    assert results.response["url"] == tab.url
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("critical", "serious")
    ]


def _no_sideways_scroll(tab: Any) -> bool:
    return bool(tab.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def _rich_session(client: stripe.StripeClient) -> stripe.checkout.Session:
    """A session showing everything the page can: quantity control, codes, address, tax, two methods."""
    item = session_params()["line_items"][0]
    return client.v1.checkout.sessions.create(
        params=session_params(
            line_items=[{**item, "adjustable_quantity": {"enabled": True, "maximum": 10}}],
            allow_promotion_codes=True,
            billing_address_collection="required",
            automatic_tax={"enabled": True},
            submit_type="pay",
            locale="auto",
        )
    )


@pytest.mark.parametrize(
    ("locale", "lang", "pay", "email_error"),
    [
        ("en-US", "en", "Pay", "Your email address is invalid."),
        ("zh-CN", "zh-Hans", "支付", "您的电子邮箱地址无效。"),
    ],
)
def test_hosted_page_in_both_languages_is_accessible(
    browser: Any, hosted: SandboxServer, tmp_path: Path, locale: str, lang: str, pay: str, email_error: str
) -> None:
    client = sdk_client(hosted.url)
    probe = _tab(browser, 1280, locale)
    probe.set_content("<html><body><input type=text></body></html>")
    assert any(p.startswith("label (critical)") for p in _serious(probe))  # axe does look
    probe.context.close()
    problems: list[str] = []
    for width in WIDTHS:
        tab = _tab(browser, width, locale)
        session = _rich_session(client)
        tab.goto(str(session.url))
        assert tab.locator("html").get_attribute("lang") == lang
        assert tab.get_by_test_id("pay").inner_text() == pay
        problems += [f"{width}px page: {p}" for p in _serious(tab)]
        assert _no_sideways_scroll(tab), f"{width}px: the page scrolls sideways"
        tab.screenshot(path=str(tmp_path / f"pay-{lang}-{width}.png"), full_page=True)

        tab.get_by_test_id("pay").click()  # nothing filled in: every error shows
        assert tab.get_by_test_id("error-email").inner_text() == email_error
        problems += [f"{width}px errors: {p}" for p in _serious(tab)]
        assert _no_sideways_scroll(tab)

        challenged = hosted.control(
            "POST",
            f"checkout/sessions/{session.id}/pay",
            card_number="4000002500003155",
            three_d_secure="wait",
        )
        tab.goto(f"{session.url}/3ds/{challenged['payment_intent']}")
        assert tab.get_by_test_id("3ds-complete").is_visible()
        problems += [f"{width}px 3-D Secure: {p}" for p in _serious(tab)]
        tab.get_by_test_id("3ds-complete").click()
        tab.wait_for_url(f"{SUCCESS}?session_id={session.id}")
        tab.goto(str(session.url))
        assert tab.get_by_test_id("status").is_visible()
        problems += [f"{width}px paid: {p}" for p in _serious(tab)]
        tab.goto(f"{hosted.url}/receipts/{challenged['payment_intent']}")
        problems += [f"{width}px receipt: {p}" for p in _serious(tab)]
        tab.goto(f"{hosted.url}/c/pay/cs_test_nope")
        problems += [f"{width}px missing: {p}" for p in _serious(tab)]
        tab.context.close()
    assert problems == []


def test_pay_with_a_promotion_code_and_automatic_tax(browser: Any, hosted: SandboxServer) -> None:
    client = sdk_client(hosted.url)
    coupon = client.v1.coupons.create(params={"percent_off": 10, "duration": "once"})
    client.v1.promotion_codes.create(
        params={"promotion": {"type": "coupon", "coupon": coupon.id}, "code": "TEN"}
    )
    session = _rich_session(client)
    tab = _tab(browser, 1280, "en-US")
    tab.goto(str(session.url))
    assert tab.get_by_test_id("total").inner_text() == "€25.00"

    tab.get_by_label("Promotion code").fill("WRONG")
    tab.get_by_test_id("apply-code").click()
    assert tab.get_by_test_id("error-promotion_code").inner_text() == "This code is invalid."
    tab.get_by_label("Promotion code").fill("ten")
    tab.get_by_test_id("apply-code").click()
    assert tab.get_by_test_id("discount").inner_text() == "−€2.50"
    assert tab.get_by_test_id("total").inner_text() == "€22.50"

    tab.get_by_label("Quantity").fill("3")
    tab.get_by_label("Country or region").select_option("DE")
    tab.get_by_test_id("update").click()
    # 3 × €12.50 = €37.50, 10% off = €33.75, German VAT 19% on top = €6.41.
    assert tab.get_by_test_id("discount").inner_text() == "−€3.75"
    assert tab.get_by_test_id("tax").inner_text() == "€6.41"
    assert tab.get_by_test_id("total").inner_text() == "€40.16"

    tab.get_by_label("Email").fill("buyer@example.com")
    tab.get_by_label("Card number").fill("4242 4242 4242 4242")
    tab.get_by_label("Expiration").fill("12 / 34")
    tab.get_by_label("CVC").fill("123")
    tab.get_by_label("Cardholder name").fill("Jenny Rosen")
    tab.get_by_label("Address line 1").fill("Unter den Linden 1")
    tab.get_by_label("City").fill("Berlin")
    tab.get_by_label("Postal code").fill("10117")
    tab.get_by_test_id("pay").click()
    tab.wait_for_url(f"{SUCCESS}?session_id={session.id}")

    done = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["payment_intent", "line_items"]}
    )
    assert (done.status, done.payment_status) == ("complete", "paid")
    assert done.total_details is not None
    assert (done.amount_subtotal, done.total_details.amount_discount, done.total_details.amount_tax) == (
        3750,
        375,
        641,
    )
    assert done.amount_total == 4016
    assert [d.promotion_code for d in done.discounts or []] != [None]
    assert done.automatic_tax.status == "complete"
    assert done.customer_details is not None
    assert done.customer_details.address is not None
    assert (done.customer_details.address.country, done.customer_details.address.city) == ("DE", "Berlin")
    assert isinstance(done.payment_intent, stripe.PaymentIntent)
    assert (done.payment_intent.amount, done.payment_intent.amount_received) == (4016, 4016)
    assert done.line_items is not None
    assert done.line_items.data[0].quantity == 3
    tab.context.close()
