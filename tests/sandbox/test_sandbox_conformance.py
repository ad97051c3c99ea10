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
    # Everything Checkout simulates at once: a customer, a discount, automatic tax, a buyer-set
    # quantity and a manually captured payment.
    coupon = client.v1.coupons.create(params={"percent_off": 10, "duration": "once"})
    customer = client.v1.customers.create(
        params={"email": "c@example.com", "address": {"country": "DE", "city": "Berlin"}}
    )
    item = session_params()["line_items"][0]
    rich = client.v1.checkout.sessions.create(
        params=session_params(
            customer=customer.id,
            discounts=[{"coupon": coupon.id}],
            automatic_tax={"enabled": True},
            line_items=[{**item, "adjustable_quantity": {"enabled": True}}],
            payment_intent_data={"capture_method": "manual"},
            billing_address_collection="required",
            submit_type="donate",
        )
    )
    assert rich.automatic_tax.status == "complete"
    sandbox.control("POST", f"checkout/sessions/{rich.id}/pay")
    ids.append(rich.id)
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
    problems: list[str] = []
    for method, url, body in recorder.sent:
        parts = urlsplit(url)
        if method == "post":
            problems += request_problems(method, parts.path, body or "")
        elif parts.query:
            problems += query_problems(parts.path, parts.query)
    assert problems == []


def test_request_schema_check_catches_bad_requests() -> None:
    """Guard against a validator that accepts everything."""
    require_shared()
    assert request_problems("post", "/v1/checkout/sessions", "line_items[0][quantity]=abc&success_url=x")
    assert request_problems("post", "/v1/refunds", "bogus=1")
    assert query_problems("/v1/events", "limit=abc")


@pytest.mark.parametrize("path", ["/v1/checkout/sessions", "/v1/refunds"])
def test_sandbox_rejects_what_spec_rejects(sandbox: SandboxServer, path: str) -> None:
    response = httpx.post(
        f"{sandbox.url}{path}",
        data={"definitely_unknown": "1"},
        headers={"Authorization": f"Bearer {TEST_KEY}"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Received unknown parameter: definitely_unknown"
