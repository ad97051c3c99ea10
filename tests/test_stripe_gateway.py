"""Every request the shop sends to Stripe validates against Stripe's request schema for its path.

The shop's own ``StripeGateway`` talks to the sandbox through an ASGI recorder, so what is
checked is exactly what the shop puts on the wire.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.catalogue.loader import load_catalogue
from app.catalogue.model import Pack
from app.money.models import Order
from app.sandbox import SandboxConfig
from app.settings import PROJECT_ROOT
from app.stripe_gateway import PaymentProviderError, StripeGateway, session_idempotency_key
from tests.conftest import make_settings
from tests.sandbox.stripe_spec import query_problems, request_problems
from tests.support.aio import run_async
from tests.support.sandbox_server import TEST_KEY, SandboxServer, start_sandbox

Sent = list[tuple[str, str, str, str]]


def recorder(sent: Sent) -> Any:
    """Wrap an ASGI app, keeping (method, path, query, body) of every HTTP request."""

    def wrap(app: Any) -> Any:
        async def recorded(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            chunks: list[bytes] = []
            more = True
            while more:
                message = await receive()
                chunks.append(message.get("body", b""))
                more = message.get("more_body", False)
            body = b"".join(chunks)
            sent.append((scope["method"], scope["path"], scope["query_string"].decode(), body.decode()))
            delivered = False

            async def replay() -> dict[str, Any]:
                nonlocal delivered
                if delivered:
                    return {"type": "http.disconnect"}
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}

            await app(scope, replay, send)

        return recorded

    return wrap


@pytest.fixture
def recorded_sandbox(shared_stripe: Path) -> Any:
    sent: Sent = []
    with start_sandbox(SandboxConfig(), app_factory=recorder(sent)) as server:
        yield server, sent


def _order(order_id: int, pack: Pack) -> Order:
    return Order(
        id=order_id,
        user_id=7,
        pack_id=pack.id,
        pack_name=pack.name.en,
        asset=pack.asset,
        units=pack.units,
        bonus=pack.bonus,
        amount=pack.price_minor,
        currency=pack.currency,
        locale="zh",
    )


def test_every_request_the_shop_sends_matches_stripes_schema(
    recorded_sandbox: tuple[SandboxServer, Sent], tmp_path: Path
) -> None:
    sandbox, sent = recorded_sandbox
    settings = make_settings(
        tmp_path, "sqlite+aiosqlite:///unused.db", stripe_api_base=sandbox.url, stripe_secret_key=TEST_KEY
    )
    catalogue = load_catalogue(PROJECT_ROOT / "pricing.toml")
    pack = catalogue.get_active("coins-100")
    assert pack is not None
    sandbox.control(
        "POST", "prices", id="price_dashboard_1", currency="usd", unit_amount=99, product_name="X"
    )
    priced = replace(pack, id="coins-dashboard", stripe_price="price_dashboard_1", price=Decimal("0.99"))

    async def drive() -> None:
        async def installation_id() -> str:
            return "test-installation"

        gateway = StripeGateway(settings, installation_id=installation_id)
        try:

            async def start(order_id: int, sold: Pack, email: str, locale: str) -> Any:
                buyer = {"user_id": order_id, "email": email, "created_at": 1.5e9}
                customer = await gateway.create_customer(**buyer)  # type: ignore[arg-type]
                # The same buyer again (a racing first checkout) gets the same Customer.
                assert await gateway.create_customer(**buyer) == customer  # type: ignore[arg-type]
                return await gateway.create_checkout_session(
                    _order(order_id, sold),
                    sold,
                    customer=customer,
                    locale=locale,
                    base_url="http://127.0.0.1:8000",
                    expires_in=3600,
                )

            first = await start(1, pack, "a@example.com", "zh")
            second = await start(2, priced, "b@example.com", "en")
            sandbox.control("POST", f"checkout/sessions/{first.id}/pay", card_number="4242424242424242")
            paid = await gateway.retrieve_session(first.id)
            assert paid.payment_status == "paid"
            intent = paid.payment_intent
            intent_id = intent if isinstance(intent, str) else intent.id  # type: ignore[union-attr]
            await gateway.create_refund(payment_intent=intent_id, amount=50, reason="requested_by_customer")
            await gateway.expire_session(second.id)
            events = [event async for event in gateway.list_events(created_gte=1, page_size=3)]
            assert any(e["type"] == "checkout.session.completed" for e in events)
            with pytest.raises(PaymentProviderError):
                await gateway.retrieve_session("cs_test_unknown")
        finally:
            await gateway.close()

    run_async(drive())

    kinds = {(method, path.split("/")[2]) for method, path, _q, _b in sent if path.startswith("/v1/")}
    assert {
        ("POST", "customers"),
        ("POST", "checkout"),
        ("GET", "checkout"),
        ("POST", "refunds"),
        ("GET", "events"),
    } <= kinds
    problems: list[str] = []
    for method, path, query, body in sent:
        if not path.startswith("/v1/"):
            continue
        if method == "POST":
            problems += request_problems("post", path, body)
        elif query:
            problems += query_problems(path, query)
    assert problems == []
    assert len([1 for m, p, _q, _b in sent if p.startswith("/v1/events")]) >= 2, "all pages are followed"


def test_the_session_made_after_a_lost_customer_has_a_key_of_its_own() -> None:
    """Stripe may keep a refusal under its idempotency key: the second attempt, with the new
    Customer, must not reuse the key of the one refused for the deleted Customer."""
    order = Order(id=7, created_at=datetime(2026, 12, 1, tzinfo=UTC))
    first = session_idempotency_key("inst", order)
    assert first == session_idempotency_key("inst", order)  # a plain retry replays
    after = session_idempotency_key("inst", order, "cus_gone")
    assert after != first
    assert after == session_idempotency_key("inst", order, "cus_gone")
