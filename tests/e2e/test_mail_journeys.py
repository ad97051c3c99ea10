"""Two whole journeys in Chromium with a real SMTP server (aiosmtpd) catching the shop's mail.

1. A signed-out visitor picks a pack on the pricing page, is told why to sign up, signs up and
   lands straight on the sandbox's hosted Checkout for that pack, pays, and gets a receipt.
2. A buyer who forgot the password asks for a link, opens it from the email, sets a new
   password: the other session is signed out, the link is spent, only the new password works.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from app.checkout import status
from tests.conftest import make_settings
from tests.e2e.test_browser import _fill_card
from tests.support.shop import PASSWORD, Shop, run_shop
from tests.support.smtp import Mailbox, html_of, smtp_server, text_of

pytestmark = pytest.mark.browser

NEW_PASSWORD = "lantern orbit velvet 42"


@pytest.fixture(scope="module")
def mail_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Shop, Mailbox]]:
    from app.db.migrate import upgrade

    tmp = tmp_path_factory.mktemp("mail")
    url = f"sqlite+aiosqlite:///{tmp / 'shop.db'}"
    upgrade(make_settings(tmp, url))
    status.clear_caches()
    with smtp_server() as mailbox, run_shop(tmp, url, smtp_url=mailbox.url, mail_poll_seconds=0.2) as shop:
        yield shop, mailbox


def test_signed_out_buyer_signs_up_goes_straight_to_checkout_and_gets_a_receipt(
    page: Any, mail_shop: tuple[Shop, Mailbox]
) -> None:
    shop, mailbox = mail_shop
    email = "new-buyer@example.com"
    page.goto(shop.url + "/")
    page.locator("#pack-coins-500 button[type=submit]").click()
    page.wait_for_url(re.compile(r"/sign-in\?pack=coins-500$"))
    assert "To buy Bag of coins for $4.99" in page.locator(".buying").inner_text()
    page.get_by_role("link", name="Create an account").click()
    page.wait_for_url(re.compile(r"/sign-up\?.*pack=coins-500"))
    assert "To buy Bag of coins for $4.99" in page.locator(".buying").inner_text()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.locator("main form button[type=submit]").click()

    page.wait_for_url(re.compile(r"/c/pay/cs_"))  # no stop on the way: straight to Checkout
    assert "$4.99" in page.get_by_test_id("total").inner_text()
    _fill_card(page, "4242 4242 4242 4242")
    page.wait_for_url(re.compile(r"/checkout/success\?session_id=cs_"))
    page.locator('#order-status[data-status="paid"]').wait_for(timeout=15_000)

    [order] = shop.rows(
        "SELECT o.id FROM purchase_order o JOIN user_account u ON u.id = o.user_id WHERE u.email = :e",
        e=email,
    )
    receipt = mailbox.wait(email, lambda m: "receipt" in str(m["Subject"]))
    assert receipt["Subject"] == f"Your receipt for Bag of coins (order #{order['id']})"
    body = text_of(receipt)
    wanted = (f"#{order['id']}", "Units: 500 coins", "Bonus: 50 coins", "Amount paid: $4.99", "550 coins")
    for expected in wanted:
        assert expected in body, (expected, body)
    link = re.search(r"(http://\S+/receipts/pi_\S+)", body)
    assert link, body  # the sandbox charge's receipt_url
    assert f'href="{link.group(1)}"' in html_of(receipt)
    assert len(mailbox.to(email)) == 1  # webhook and success page both saw the credit: one receipt


def test_reset_password_from_the_email_signs_the_other_session_out(
    page: Any, mail_shop: tuple[Shop, Mailbox]
) -> None:
    shop, mailbox = mail_shop
    other = shop.buyer().sign_up()  # signed in on another device
    assert other.client.get("/account").status_code == 200

    page.goto(shop.url + "/sign-in")
    page.get_by_role("link", name="Forgot password?").click()
    page.get_by_label("Email").fill(other.email)
    page.get_by_role("button", name="Send me a link").click()
    answer = page.locator("p.sent").inner_text()
    assert other.email in answer

    stranger = shop.buyer("nobody-here@example.com")
    unknown = stranger.post("/forgot-password", {"email": stranger.email})
    found = re.search(r'<p role="status" class="sent">(.*?)</p>', unknown.text, re.S)
    assert unknown.status_code == 200
    assert found
    assert found.group(1).replace(stranger.email, other.email).strip() == answer.strip()

    message = mailbox.wait(other.email, lambda m: m["Subject"] == "Reset your password")
    link = re.search(r"http://\S+/reset-password/[A-Za-z0-9_-]{43}", text_of(message))
    assert link, text_of(message)
    page.goto(link.group(0))
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set the new password").click()
    page.wait_for_url(re.compile(r"/account$"))
    assert "You are signed out everywhere else." in page.content()

    gone = other.client.get("/account")
    assert gone.status_code == 303
    assert gone.headers["location"].startswith("/sign-in")
    page.goto(link.group(0))
    assert page.locator("[data-link-state]").get_attribute("data-link-state") == "spent"
    again = shop.buyer(other.email)
    assert again.post("/sign-in", {"email": other.email, "password": PASSWORD}).status_code == 401
    assert again.post("/sign-in", {"email": other.email, "password": NEW_PASSWORD}).status_code == 303
    assert mailbox.to(stranger.email) == []
    [row] = shop.rows("SELECT data FROM mail_outbox WHERE kind = 'password_reset'")
    assert row["data"] == "{}"  # the token left the outbox once sent
