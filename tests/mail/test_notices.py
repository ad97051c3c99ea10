"""Receipts and refund notices from a real purchase on the sandbox, caught by a real SMTP server.

The buyer chose Chinese, so every message is in Chinese. Stripe (the sandbox) tells the shop
about each refund more than once (``charge.refunded``, ``refund.created``, ``refund.updated``);
each refund still brings exactly one notice.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stripe

from app.checkout import status
from tests.conftest import make_settings
from tests.support.sandbox_server import TEST_KEY
from tests.support.shop import Shop, run_shop, wait_for
from tests.support.smtp import Mailbox, smtp_server, text_of


@pytest.fixture(scope="module")
def notice_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Shop, Mailbox]]:
    from app.db.migrate import upgrade

    tmp = tmp_path_factory.mktemp("notices")
    url = f"sqlite+aiosqlite:///{tmp / 'shop.db'}"
    upgrade(make_settings(tmp, url))
    status.clear_caches()
    with smtp_server() as mailbox, run_shop(tmp, url, smtp_url=mailbox.url, mail_poll_seconds=0.2) as shop:
        yield shop, mailbox


def test_a_receipt_then_one_notice_per_refund_in_the_buyers_language(
    notice_shop: tuple[Shop, Mailbox],
) -> None:
    shop, mailbox = notice_shop
    buyer = shop.buyer()
    buyer.client.cookies.set("lang", "zh")  # the switcher's choice, saved on the account at sign-up
    buyer.sign_up()
    sid = buyer.start("coins-500")
    paid = shop.pay(sid, card_number="4242424242424242")
    assert paid["status"] == "succeeded", paid
    order = wait_for(lambda: (row := shop.order(sid))["status"] == "paid" and row)

    receipt = mailbox.wait(buyer.email, lambda m: "收据" in str(m["Subject"]))
    assert f"#{order['id']}" in str(receipt["Subject"])
    body = text_of(receipt)
    assert "4.99" in body
    assert "550" in body
    assert "/receipts/pi_" in body

    sdk = stripe.StripeClient(TEST_KEY, base_addresses={"api": shop.sandbox.url})
    sdk.v1.refunds.create({"payment_intent": str(paid["payment_intent"]), "amount": 100})
    partial = mailbox.wait(buyer.email, lambda m: "退款" in str(m["Subject"]))
    assert partial["Subject"] == f"订单 #{order['id']} 的退款"
    assert "部分退款" in text_of(partial)
    assert "US$1.00" in text_of(partial)

    sdk.v1.refunds.create({"payment_intent": str(paid["payment_intent"])})
    wait_for(lambda: len([m for m in mailbox.to(buyer.email) if "退款" in str(m["Subject"])]) == 2)
    shop.flush()  # every event the sandbox had to send has been answered
    notices = [m for m in mailbox.to(buyer.email) if "退款" in str(m["Subject"])]
    assert len(notices) == 2
    assert "全额退款" in text_of(notices[1])
    assert "550" in text_of(notices[1])  # all units taken back in total
    rows = shop.rows("SELECT kind, status FROM mail_outbox WHERE kind = 'refund'")
    assert rows == [{"kind": "refund", "status": "sent"}] * 2
