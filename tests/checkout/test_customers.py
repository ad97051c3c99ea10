"""Each buyer is one Stripe Customer: made at the first checkout, reused after, never twice."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import stripe
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.checkout.customers import customer_for
from app.db.config import make_engine
from app.stripe_gateway import StripeGateway
from tests.support.aio import run_async
from tests.support.sandbox_server import TEST_KEY
from tests.support.shop import PASSWORD, Buyer, Shop


def _customers_of(shop: Shop, email: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = shop.sandbox.call(
        lambda: [dict(c) for c in shop.sandbox.state.customers.by_id.values() if c.get("email") == email]
    )
    return found


def _stored_customer(shop: Shop, email: str) -> str | None:
    [row] = shop.rows("SELECT stripe_customer_id FROM user_account WHERE email = :e", e=email)
    value: str | None = row["stripe_customer_id"]
    return value


def test_first_checkout_makes_the_customer_and_later_ones_reuse_it(shop: Shop) -> None:
    buyer = shop.buyer().sign_up()
    assert _stored_customer(shop, buyer.email) is None  # signing up makes nothing at Stripe
    assert _customers_of(shop, buyer.email) == []

    first = buyer.start("coins-100")
    customer = _stored_customer(shop, buyer.email)
    assert customer is not None
    assert customer.startswith("cus_")
    [made] = _customers_of(shop, buyer.email)
    assert made["id"] == customer
    [row] = shop.rows("SELECT id FROM user_account WHERE email = :e", e=buyer.email)
    assert made["metadata"] == {"user_id": str(row["id"])}
    assert shop.session(first)["customer"] == customer

    second = buyer.start("coins-500")
    assert shop.session(second)["customer"] == customer
    assert len(_customers_of(shop, buyer.email)) == 1

    # Checkout knows the email from the Customer: the hosted page shows it, the receipt goes there.
    page = httpx.get(str(shop.session(first)["url"]), timeout=10)
    assert page.status_code == 200
    assert buyer.email in page.text


def test_two_concurrent_first_checkouts_make_one_customer(shop: Shop) -> None:
    tab = shop.buyer().sign_up()
    other = Buyer(shop, tab.email, ip="10.250.0.1")  # the same buyer signed in on another device
    signed_in = other.post("/sign-in", {"email": tab.email, "password": PASSWORD})
    assert signed_in.status_code == 303, signed_in.text[:300]

    with ThreadPoolExecutor(max_workers=2) as pool:
        starts = [(tab, "coins-100"), (other, "coins-500")]
        sessions = list(pool.map(lambda pair: pair[0].start(pair[1]), starts))

    [made] = _customers_of(shop, tab.email)
    assert _stored_customer(shop, tab.email) == made["id"]
    assert {shop.session(sid)["customer"] for sid in sessions} == {made["id"]}
    [row] = shop.rows("SELECT id FROM user_account WHERE email = :e", e=tab.email)
    keys = shop.sandbox.call(lambda: list(shop.sandbox.state.idempotency))
    assert [k for k in keys if f"-user-{row['id']}-" in k and k.endswith("-customer")], keys


def test_another_buyer_gets_their_own_customer(sqlite_shop: Shop) -> None:
    one = sqlite_shop.buyer().sign_up()
    two = sqlite_shop.buyer().sign_up()
    one.start()
    two.start()
    first, second = _stored_customer(sqlite_shop, one.email), _stored_customer(sqlite_shop, two.email)
    assert first
    assert second
    assert first != second


def test_a_customer_stored_meanwhile_is_kept_not_replaced(sqlite_shop: Shop) -> None:
    """The race's second writer: its UPDATE finds the column filled and keeps what is there."""
    shop = sqlite_shop
    buyer = shop.buyer().sign_up()
    sdk = stripe.StripeClient(TEST_KEY, base_addresses={"api": shop.sandbox.url})
    first = sdk.v1.customers.create({"email": buyer.email}).id

    async def second_checkout() -> str:
        async def installation_id() -> str:
            return "test-installation"

        engine = make_engine(shop.settings)
        gateway = StripeGateway(shop.settings, installation_id=installation_id)
        try:
            async with AsyncSession(engine) as db, db.begin():
                user = await db.scalar(select(User).where(User.email == buyer.email))
                assert user is not None
                assert user.stripe_customer_id is None  # read before the other checkout stored its own
                await db.execute(
                    text("UPDATE user_account SET stripe_customer_id = :c WHERE id = :u"),
                    {"c": first, "u": user.id},
                )
                return await customer_for(db, gateway, user)
        finally:
            await gateway.close()
            await engine.dispose()

    assert run_async(second_checkout()) == first
    assert _stored_customer(shop, buyer.email) == first


def test_a_changed_email_reaches_the_customer_at_the_next_checkout_once(sqlite_shop: Shop) -> None:
    """Regression: the Customer kept the sign-up email after the account's changed (through the
    host API), so Stripe's receipts went to the old address."""
    shop = sqlite_shop
    buyer = shop.buyer().sign_up()
    buyer.start("coins-100")
    customer = _stored_customer(shop, buyer.email)
    assert customer is not None
    [row] = shop.rows("SELECT stripe_customer_email FROM user_account WHERE email = :e", e=buyer.email)
    assert row["stripe_customer_email"] == buyer.email  # kept with the Customer it was made with
    new = "renamed-" + buyer.email
    shop.rows("UPDATE user_account SET email = :n WHERE email = :e RETURNING id", n=new, e=buyer.email)

    session = buyer.start("coins-500")
    sdk = stripe.StripeClient(TEST_KEY, base_addresses={"api": shop.sandbox.url})
    assert sdk.v1.customers.retrieve(customer).email == new
    assert shop.session(session)["customer"] == customer
    page = httpx.get(str(shop.session(session)["url"]), timeout=10)
    assert new in page.text  # the hosted page (and so the receipt) has the new address
    [row] = shop.rows("SELECT stripe_customer_email FROM user_account WHERE email = :e", e=new)
    assert row["stripe_customer_email"] == new

    # In step now: the next checkout sends nothing (a change made at Stripe alone stays).
    sdk.v1.customers.update(customer, {"email": "set-at-stripe@example.com"})
    buyer.start("coins-2500")
    assert sdk.v1.customers.retrieve(customer).email == "set-at-stripe@example.com"
    assert len(_customers_of(shop, new)) == 0


def test_a_customer_deleted_at_stripe_is_replaced_at_the_next_checkout(sqlite_shop: Shop) -> None:
    """Regression: a buyer whose Customer was deleted (from the dashboard) could never check out
    again: the shop kept sending the stored id and Stripe answered "No such customer"."""
    shop = sqlite_shop
    buyer = shop.buyer().sign_up()
    buyer.start("coins-100")
    gone = _stored_customer(shop, buyer.email)
    assert gone is not None
    sdk = stripe.StripeClient(TEST_KEY, base_addresses={"api": shop.sandbox.url})
    assert sdk.v1.customers.delete(gone).to_dict()["deleted"] is True

    session = buyer.start("coins-500")  # the buyer just reaches Checkout
    replacement = _stored_customer(shop, buyer.email)
    assert replacement is not None
    assert replacement != gone
    assert shop.session(session)["customer"] == replacement
    [made] = _customers_of(shop, buyer.email)
    assert made["id"] == replacement
    [row] = shop.rows("SELECT id, stripe_customer_email FROM user_account WHERE email = :e", e=buyer.email)
    assert made["metadata"] == {"user_id": str(row["id"])}
    assert row["stripe_customer_email"] == buyer.email
    page = httpx.get(str(shop.session(session)["url"]), timeout=10)
    assert buyer.email in page.text

    # Made once: later checkouts keep the replacement.
    assert shop.session(buyer.start("coins-2500"))["customer"] == replacement
    assert len(_customers_of(shop, buyer.email)) == 1


def test_a_deleted_customer_found_by_the_email_update_is_replaced(sqlite_shop: Shop) -> None:
    """The same, when the first call to meet the deleted Customer is the email update."""
    shop = sqlite_shop
    buyer = shop.buyer().sign_up()
    buyer.start("coins-100")
    gone = _stored_customer(shop, buyer.email)
    assert gone is not None
    stripe.StripeClient(TEST_KEY, base_addresses={"api": shop.sandbox.url}).v1.customers.delete(gone)
    new = "moved-" + buyer.email
    shop.rows("UPDATE user_account SET email = :n WHERE email = :e RETURNING id", n=new, e=buyer.email)

    session = buyer.start("coins-500")
    [made] = _customers_of(shop, new)
    assert made["id"] != gone
    assert _stored_customer(shop, new) == made["id"]
    assert shop.session(session)["customer"] == made["id"]
