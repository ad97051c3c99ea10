"""Starting a purchase: the Checkout Session Stripe gets, and every way the request can be wrong."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import stripe

from app.checkout.links import cancel_token
from app.settings import PROJECT_ROOT, Settings
from app.web.factory import create_app
from tests.support.sandbox_server import TEST_KEY
from tests.support.shop import PASSWORD, Shop, run_shop, session_id_of


def test_buy_sends_the_catalogue_price_and_ignores_price_fields(shop: Shop) -> None:
    buyer = shop.buyer().sign_up()
    before = int(time.time())
    response = buyer.buy(
        "coins-500", price="0.01", amount="1", unit_amount="1", currency="jpy", units="999999", bonus="5"
    )
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(shop.sandbox.url + "/c/pay/cs_")
    sid = session_id_of(location)

    session = shop.session(sid)
    assert session["amount_total"] == 499
    assert session["currency"] == "usd"
    assert session["mode"] == "payment"
    order = shop.order(sid)
    assert session["metadata"] == {
        "order_id": str(order["id"]),
        "pack_id": "coins-500",
        "user_id": str(order["user_id"]),
    }
    assert session["client_reference_id"] == str(order["user_id"])
    assert session["customer_email"] is None
    [account] = shop.rows("SELECT stripe_customer_id FROM user_account WHERE email = :e", e=buyer.email)
    assert session["customer"] == account["stripe_customer_id"]
    assert session["locale"] == "en"
    assert session["success_url"] == f"{shop.url}/checkout/success?session_id={{CHECKOUT_SESSION_ID}}"
    # The cancel link carries the order's token: only this link cancels on GET.
    token = cancel_token(shop.settings.secret_key, order["id"])
    assert session["cancel_url"] == f"{shop.url}/checkout/cancel?order={order['id']}&token={token}"
    assert before + 3600 - 5 <= session["expires_at"] <= int(time.time()) + 3600 + 5
    # Stripe got an idempotency key derived from the order (one order never makes two sessions),
    # in this installation's namespace (another database on the same account has its own).
    keys = shop.sandbox.call(lambda: list(shop.sandbox.state.idempotency))
    installation = shop.rows("SELECT installation_id FROM installation")[0]["installation_id"]
    assert [k for k in keys if f":{installation}-order-{order['id']}-" in k and k.endswith("-session")], keys

    # The order is a snapshot of the catalogue, open, with the session's id.
    assert order["status"] == "open"
    assert (order["amount"], order["currency"], order["units"], order["bonus"]) == (499, "USD", 500, 50)
    assert order["asset"] == "coins"
    assert order["pack_name"] == "Bag of coins"
    assert order["locale"] == "en"


def test_chinese_buyer_gets_a_chinese_checkout(sqlite_shop: Shop) -> None:
    buyer = sqlite_shop.buyer(locale="zh-CN,zh;q=0.9").sign_up()
    sid = buyer.start("coins-100")
    session = sqlite_shop.session(sid)
    assert session["locale"] == "zh"
    assert sqlite_shop.order(sid)["pack_name"] == "一小袋金币"
    assert sqlite_shop.order(sid)["locale"] == "zh"


def test_signed_out_visitor_is_sent_to_sign_in_with_the_pack(sqlite_shop: Shop) -> None:
    visitor = sqlite_shop.buyer()
    response = visitor.buy("coins-100")
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?pack=coins-100"
    assert sqlite_shop.rows("SELECT id FROM purchase_order") == []
    # Signing in there goes straight on to Checkout for that pack.
    sqlite_shop.buyer(visitor.email).sign_up()  # the account exists (made on another device)
    signed_in = visitor.post("/sign-in", {"email": visitor.email, "password": PASSWORD, "pack": "coins-100"})
    assert signed_in.status_code == 303
    assert "/c/pay/cs_" in signed_in.headers["location"]
    [order] = sqlite_shop.rows("SELECT pack_id FROM purchase_order")
    assert order["pack_id"] == "coins-100"


def test_unknown_missing_and_inactive_packs_are_refused(
    sqlite_url: str, sqlite_settings: object, tmp_path: Path
) -> None:
    pricing = tmp_path / "pricing.toml"
    pricing.write_text(
        (PROJECT_ROOT / "pricing.toml").read_text(encoding="utf-8")
        + """
[[packs]]
id = "coins-retired"
asset = "coins"
units = 10
price = "0.99"
currency = "USD"
order = 99
active = false
name = { en = "Retired", zh = "已下架" }
description = { en = "Gone.", zh = "已下架。" }
""",
        encoding="utf-8",
    )
    with run_shop(tmp_path, sqlite_url, pricing_path=pricing) as shop:
        buyer = shop.buyer().sign_up()
        unknown = buyer.buy("coins-nope")
        assert unknown.status_code == 404
        assert "could not find that pack" in unknown.text
        inactive = buyer.buy("coins-retired")
        assert inactive.status_code == 400
        assert "no longer on sale" in inactive.text
        missing = buyer.post("/checkout", {"price": "1"})
        assert missing.status_code == 400
        assert "choose a pack" in missing.text
        zh = shop.buyer(locale="zh").sign_up().buy("coins-retired")
        assert zh.status_code == 400
        assert "不再出售" in zh.text
        assert shop.rows("SELECT id FROM purchase_order") == []
        assert shop.sandbox.call(lambda: len(shop.sandbox.state.sessions)) == 0


def test_missing_csrf_token_is_refused(sqlite_shop: Shop) -> None:
    buyer = sqlite_shop.buyer().sign_up()
    response = buyer.client.post("/checkout", data={"pack": "coins-100"})
    assert response.status_code == 403
    assert sqlite_shop.rows("SELECT id FROM purchase_order") == []


def test_stripe_unreachable_shows_a_friendly_page_and_fails_the_order(
    migrated_url: str, tmp_path: Path
) -> None:
    from tests.support.servers import free_port

    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens here
    with run_shop(tmp_path, migrated_url, stripe_api_base=dead) as shop:
        buyer = shop.buyer().sign_up()
        response = buyer.buy("coins-100")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/checkout/failed?order=")
        page = buyer.client.get(response.headers["location"])
        assert page.status_code == 503
        assert "could not reach the payment provider" in page.text
        assert 'name="pack" value="coins-100"' in page.text  # one click to try again
        orders = shop.rows("SELECT status, status_reason, stripe_session_id FROM purchase_order")
        assert orders == [
            {"status": "failed", "status_reason": "stripe_unreachable", "stripe_session_id": None}
        ]
        assert shop.rows("SELECT id FROM ledger_entry") == []
        # Another buyer cannot read it.
        stranger = shop.buyer().sign_up()
        assert stranger.client.get(response.headers["location"]).status_code == 404


def test_stripe_refusal_is_explained_in_the_buyers_language(
    sqlite_url: str, sqlite_settings: object, tmp_path: Path
) -> None:
    # A pack on a Stripe Price that was archived after the shop checked it at start-up:
    # Stripe answers 400 (the price is inactive).
    pricing = tmp_path / "pricing.toml"
    price: dict[str, str] = {}

    def make_app(settings: Settings) -> Any:
        sdk = stripe.StripeClient(TEST_KEY, base_addresses={"api": settings.stripe_api_base})
        made = sdk.v1.prices.create({"currency": "usd", "unit_amount": 99, "product_data": {"name": "Coins"}})
        price["id"] = made.id
        text = (PROJECT_ROOT / "pricing.toml").read_text(encoding="utf-8")
        pricing.write_text(
            text.replace('id = "coins-100"\n', f'id = "coins-100"\nstripe_price = "{made.id}"\n', 1),
            encoding="utf-8",
        )
        return create_app(settings)

    with run_shop(tmp_path, sqlite_url, pricing_path=pricing, make_app=make_app) as shop:
        stripe.StripeClient(TEST_KEY, base_addresses={"api": shop.sandbox.url}).v1.prices.update(
            price["id"], {"active": False}
        )
        buyer = shop.buyer(locale="zh").sign_up()
        response = buyer.buy("coins-100")
        page = buyer.client.get(response.headers["location"])
        assert page.status_code == 502
        assert "支付服务" in page.text
        assert shop.rows("SELECT status FROM purchase_order") == [{"status": "failed"}]


@pytest.mark.parametrize("field", ["price_data[unit_amount]", "line_items[0][price_data][unit_amount]"])
def test_nested_price_fields_are_ignored_too(sqlite_shop: Shop, field: str) -> None:
    buyer = sqlite_shop.buyer().sign_up()
    sid = buyer.start("coins-100", **{field: "1"})
    assert sqlite_shop.session(sid)["amount_total"] == 99
