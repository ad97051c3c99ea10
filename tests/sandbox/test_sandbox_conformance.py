"""Conformance with Stripe's published spec and fixtures, for responses and for the SDK's requests."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import stripe

from tests.sandbox.conftest import session_params
from tests.sandbox.stripe_spec import conformance_problems, query_problems, request_problems, require_shared
from tests.support.sandbox_server import TEST_KEY, SandboxServer


class RecordingHTTPXClient(stripe.HTTPXClient):
    """The SDK's own HTTP client, keeping a copy of every request it sends."""

    def __init__(self) -> None:
        super().__init__(allow_sync_methods=True)
        self.sent: list[tuple[str, str, str | None]] = []

    def request(self, method: str, url: str, headers: Any, post_data: Any = None) -> Any:
        self.sent.append((method, url, post_data))
        return super().request(method, url, headers, post_data)

    def problems(self) -> list[str]:
        """Each request sent, checked against its operation's request schema or query parameters."""
        found: list[str] = []
        for method, url, body in self.sent:
            parts = urlsplit(url)
            if method == "post":
                found += request_problems(method, parts.path, body or "")
            elif parts.query:
                found += query_problems(parts.path, parts.query)
        return found


def _raw(sandbox: SandboxServer, path: str) -> dict[str, Any]:
    response = httpx.get(f"{sandbox.url}{path}", headers={"Authorization": f"Bearer {TEST_KEY}"})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def _drive_all_flows(client: stripe.StripeClient, sandbox: SandboxServer) -> list[str]:
    """Produce every object kind and event type; returns the session ids."""
    ids = []
    for card in ("4242424242424242", "4000000000000259", "4000000000000002", "4000002500003155"):
        session = client.v1.checkout.sessions.create(params=session_params())
        sandbox.control("POST", f"checkout/sessions/{session.id}/pay", card_number=card)
        ids.append(session.id)
    for account in ("DE89370400440532013000", "DE62370400440532013001"):
        session = client.v1.checkout.sessions.create(params=session_params())
        sandbox.control("POST", f"checkout/sessions/{session.id}/pay", bank_account=account)
        ids.append(session.id)
    sandbox.control("POST", "clock/advance", seconds=120)
    expiring = client.v1.checkout.sessions.create(params=session_params())
    client.v1.checkout.sessions.expire(expiring.id)
    ids.append(expiring.id)
    paid = client.v1.checkout.sessions.retrieve(ids[0])
    assert isinstance(paid.payment_intent, str)
    client.v1.refunds.create(params={"payment_intent": paid.payment_intent, "amount": 100})
    for dispute in sandbox.state.disputes.dump():
        sandbox.control("POST", f"disputes/{dispute['id']}/close", outcome="won")
    return ids


def test_responses_match_spec_fixtures_and_sdk(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    require_shared()
    ids = _drive_all_flows(client, sandbox)
    objects: list[dict[str, Any]] = []
    for sid in ids:
        session = _raw(sandbox, f"/v1/checkout/sessions/{sid}")
        objects.append(session)
        objects.append(_raw(sandbox, f"/v1/checkout/sessions/{sid}/line_items"))
        if session["payment_intent"]:
            pi = _raw(sandbox, f"/v1/payment_intents/{session['payment_intent']}")
            objects.append(pi)
            objects.append(_raw(sandbox, f"/v1/charges/{pi['latest_charge']}"))
    objects.append(_raw(sandbox, "/v1/checkout/sessions?limit=100"))
    objects.append(
        _raw(sandbox, f"/v1/checkout/sessions/{ids[0]}?expand[]=line_items&expand[]=payment_intent")
    )
    for refund in sandbox.state.refunds.dump():
        objects.append(_raw(sandbox, f"/v1/refunds/{refund['id']}"))
    for dispute in sandbox.state.disputes.dump():
        objects.append(_raw(sandbox, f"/v1/disputes/{dispute['id']}"))
    events = _raw(sandbox, "/v1/events?limit=100")
    objects.append(events)
    objects.append(_raw(sandbox, f"/v1/events/{events['data'][0]['id']}"))

    kinds = {o["object"] for o in objects} | {e["data"]["object"]["object"] for e in events["data"]}
    assert kinds >= {"checkout.session", "list", "payment_intent", "charge", "refund", "dispute", "event"}
    assert {e["type"] for e in events["data"]} >= {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "checkout.session.expired",
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "charge.succeeded",
        "charge.refunded",
        "refund.created",
        "refund.updated",
        "charge.dispute.created",
        "charge.dispute.closed",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.funds_reinstated",
    }
    problems = sorted({p for obj in objects for p in conformance_problems(obj)})
    assert problems == []


def test_error_bodies_match_spec(sandbox: SandboxServer) -> None:
    require_shared()
    headers = {"Authorization": f"Bearer {TEST_KEY}"}
    bodies = [
        httpx.get(f"{sandbox.url}/v1/checkout/sessions/cs_x", headers=headers).json(),
        httpx.post(f"{sandbox.url}/v1/checkout/sessions", data={"x": "1"}, headers=headers).json(),
        httpx.get(f"{sandbox.url}/v1/events").json(),
    ]
    for body in bodies:
        assert conformance_problems(body, schema="error") == []


def test_sdk_requests_match_request_schemas(sandbox: SandboxServer) -> None:
    require_shared()
    recorder = RecordingHTTPXClient()
    client = stripe.StripeClient(
        TEST_KEY, base_addresses={"api": sandbox.url}, http_client=recorder, max_network_retries=0
    )
    session = client.v1.checkout.sessions.create(
        params=session_params(
            customer_email="a@b.example",
            locale="fr",
            allow_promotion_codes=True,
            payment_method_types=["card"],
            expand=["line_items"],
            payment_intent_data={"metadata": {"k": "v"}},
        )
    )
    client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    client.v1.checkout.sessions.list(params={"limit": 3, "payment_intent": "pi_x"})
    client.v1.checkout.sessions.line_items.list(session.id, params={"limit": 5})
    sandbox.control("POST", f"checkout/sessions/{session.id}/pay")
    paid = client.v1.checkout.sessions.retrieve(session.id)
    assert isinstance(paid.payment_intent, str)
    client.v1.refunds.create(
        params={
            "payment_intent": paid.payment_intent,
            "amount": 100,
            "reason": "requested_by_customer",
            "metadata": {"k": "v"},
        }
    )
    client.v1.events.list(
        params={"limit": 10, "type": "checkout.session.*", "delivery_success": True, "created": {"gte": 1}}
    )
    other = client.v1.checkout.sessions.create(params=session_params())
    client.v1.checkout.sessions.expire(other.id)

    assert len(recorder.sent) == 9
    problems = recorder.problems()
    assert problems == []


def test_request_schema_check_catches_bad_requests() -> None:
    """Guard against a validator that accepts everything."""
    require_shared()
    assert request_problems("post", "/v1/checkout/sessions", "line_items[0][quantity]=abc&success_url=x")
    assert request_problems("post", "/v1/refunds", "bogus=1")
    assert query_problems("/v1/events", "limit=abc")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/checkout/sessions",
        "/v1/refunds",
        "/v1/coupons",
        "/v1/promotion_codes",
        "/v1/customers",
        "/v1/products",
        "/v1/prices",
        "/v1/tax_rates",
    ],
)
def test_sandbox_rejects_what_spec_rejects(sandbox: SandboxServer, path: str) -> None:
    response = httpx.post(
        f"{sandbox.url}{path}",
        data={"definitely_unknown": "1"},
        headers={"Authorization": f"Bearer {TEST_KEY}"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Received unknown parameter: definitely_unknown"


def test_sdk_requests_to_new_resources_match_request_schemas(module_sandbox: SandboxServer) -> None:
    """Each new endpoint, called as the SDK calls it, sends what Stripe's request schema accepts."""
    require_shared()
    recorder = RecordingHTTPXClient()
    client = stripe.StripeClient(
        TEST_KEY, base_addresses={"api": module_sandbox.url}, http_client=recorder, max_network_retries=0
    )
    product = client.v1.products.create(
        params={
            "name": "Coins",
            "metadata": {"k": "v"},
            "default_price_data": {"currency": "eur", "unit_amount": 500},
        }
    )
    client.v1.products.update(product.id, params={"description": "", "metadata": {"k": ""}})
    client.v1.products.list(params={"limit": 2, "active": True, "created": {"gte": 1}})
    client.v1.products.search(params={"query": 'name:"Coins"', "limit": 1})
    price = client.v1.prices.create(
        params={
            "product": product.id,
            "currency": "eur",
            "unit_amount": 700,
            "lookup_key": "coins",
            "tax_behavior": "inclusive",
        }
    )
    client.v1.prices.retrieve(price.id, params={"expand": ["product"]})
    client.v1.prices.update(price.id, params={"nickname": "n", "active": True})
    client.v1.prices.list(params={"product": product.id, "lookup_keys": ["coins"], "type": "one_time"})
    customer = client.v1.customers.create(params={"email": "c@example.com", "address": {"country": "DE"}})
    client.v1.customers.update(customer.id, params={"name": "C", "tax_exempt": "none"})
    client.v1.customers.list(params={"email": "c@example.com", "limit": 3})
    client.v1.customers.search(params={"query": 'email:"c@example.com"'})
    coupon = client.v1.coupons.create(params={"percent_off": 12.5, "duration": "once", "max_redemptions": 3})
    client.v1.coupons.update(coupon.id, params={"name": "Twelve"})
    client.v1.coupons.list(params={"limit": 3})
    promo = client.v1.promotion_codes.create(
        params={  # the 2023 spec's `coupon`; the pinned SDK also offers `promotion[coupon]`
            "coupon": coupon.id,  # type: ignore[typeddict-unknown-key]
            "code": "CONFORM",
            "restrictions": {"minimum_amount": 1000, "minimum_amount_currency": "eur"},
        }
    )
    client.v1.promotion_codes.update(promo.id, params={"active": False})
    client.v1.promotion_codes.list(params={"coupon": coupon.id, "active": False})
    rate = client.v1.tax_rates.create(
        params={"display_name": "VAT", "inclusive": False, "percentage": 19, "country": "DE"}
    )
    client.v1.tax_rates.update(rate.id, params={"active": False})
    client.v1.tax_rates.list(params={"inclusive": False, "active": False})
    session = client.v1.checkout.sessions.create(
        params=session_params(payment_intent_data={"capture_method": "manual"})
    )
    module_sandbox.control("POST", f"checkout/sessions/{session.id}/pay")
    pi = client.v1.payment_intents.list(params={"limit": 1}).data[0]
    client.v1.payment_intents.capture(pi.id, params={"amount_to_capture": 2000, "metadata": {"k": "v"}})
    client.v1.charges.list(params={"payment_intent": pi.id})
    refund = client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 100})
    client.v1.refunds.list(params={"payment_intent": pi.id, "limit": 5})
    client.v1.disputes.list(params={"charge": "ch_x"})
    client.v1.balance_transactions.retrieve(str(refund.balance_transaction))

    problems = recorder.problems()
    assert len(recorder.sent) == 29
    assert problems == []
