"""A Checkout Session whose payment is only authorized (``capture_method=manual``) is not
credited until it is captured; after the capture the shop credits it once.

The shop never asks for manual capture itself; this guards the day an operator's Stripe
settings (or a future pack) hold funds first: ``checkout.session.completed`` then says
``unpaid`` and the order waits as ``awaiting_payment``."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from app.stripe_gateway import StripeGateway
from tests.support.sandbox_server import TEST_KEY
from tests.support.shop import Shop, wait_for


def test_a_held_payment_is_credited_only_after_capture(
    sqlite_shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = sqlite_shop
    plain = StripeGateway.session_params

    def held(self: StripeGateway, *args: Any, **kwargs: Any) -> dict[str, Any]:
        params = plain(self, *args, **kwargs)
        params["payment_intent_data"] = {**params["payment_intent_data"], "capture_method": "manual"}
        return params

    monkeypatch.setattr(StripeGateway, "session_params", held)
    buyer = shop.buyer().sign_up()
    sid = buyer.start("coins-100")
    assert shop.pay(sid, card_number="4242424242424242")["status"] == "succeeded"  # authorized
    order = wait_for(lambda: (row := shop.order(sid))["status"] == "awaiting_payment" and row)
    shop.flush()  # every webhook answered: checkout.session.completed said unpaid
    shop.reconcile()  # and reconciliation, asking Stripe, finds it unpaid too
    assert shop.order(sid)["status"] == "awaiting_payment"
    assert shop.rows("SELECT id FROM ledger_entry WHERE order_id = :o", o=order["id"]) == []
    assert buyer.balances().get("coins", 0) == 0

    sdk = stripe.StripeClient(TEST_KEY, base_addresses={"api": shop.sandbox.url})
    session = sdk.v1.checkout.sessions.retrieve(sid)
    assert session.payment_status == "unpaid"
    sdk.v1.payment_intents.capture(str(session.payment_intent))
    shop.flush()  # payment_intent.succeeded and charge.captured delivered (no session event)
    # The buyer's waiting page (or the next sweep) asks Stripe, which now says paid: credited once.
    wait_for(lambda: buyer.status(sid) == "paid")
    shop.reconcile()
    entries = shop.rows("SELECT units, amount FROM ledger_entry WHERE order_id = :o", o=order["id"])
    assert entries == [{"units": order["units"] + order["bonus"], "amount": order["amount"]}]
    assert buyer.balances()["coins"] == order["units"] + order["bonus"]
