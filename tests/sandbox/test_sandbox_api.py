"""The /v1 API through the official SDK over real HTTP: behaviour, errors, idempotency, lists."""

from __future__ import annotations

import time
from typing import Any

import anyio
import httpx
import pytest
import stripe

from tests.sandbox.conftest import sdk_client, session_params
from tests.support.sandbox_server import TEST_KEY, SandboxServer


def test_create_and_retrieve_session(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    session = client.v1.checkout.sessions.create(
        params=session_params(
            customer_email="buyer@example.com",
            locale="de",
            allow_promotion_codes=False,
            payment_method_types=["card"],
        )
    )
    assert session.id.startswith("cs_test_")
    assert session.object == "checkout.session"
    assert session.url == f"{sandbox.url}/c/pay/{session.id}"
    assert session.amount_total == 2500
    assert session.currency == "eur"
    assert session.status == "open"
    assert session.payment_status == "unpaid"
    assert session.payment_intent is None
    assert session.livemode is False
    assert session.metadata.to_dict() == {"order_id": "ord_1"}
    assert session.client_reference_id == "user_42"
    assert session.locale == "de"
    assert session.customer_email == "buyer@example.com"
    assert session.payment_method_types == ["card"]
    assert 23 * 3600 < session.expires_at - session.created <= 24 * 3600

    again = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["line_items"]})
    assert again.id == session.id
    item = again.line_items.data[0]
    assert item.id.startswith("li_")
    assert item.quantity == 2
    assert item.amount_total == 2500
    assert item.description == "1000 coins"
    assert item.price.unit_amount == 1250

    items = client.v1.checkout.sessions.line_items.list(session.id)
    assert [i.id for i in items.data] == [item.id]


def test_registered_price_line_items(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    sandbox.control(
        "POST", "prices", id="price_coins_1000", currency="usd", unit_amount=999, product_name="1000 coins"
    )
    session = client.v1.checkout.sessions.create(
        params=session_params(line_items=[{"price": "price_coins_1000", "quantity": 3}])
    )
    assert session.amount_total == 2997
    assert session.currency == "usd"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.checkout.sessions.create(
            params=session_params(line_items=[{"price": "price_nope", "quantity": 1}])
        )
    assert err.value.user_message == "No such price: 'price_nope'"
    assert err.value.param == "line_items[0][price]"


def test_expire_session(client: stripe.StripeClient) -> None:
    session = client.v1.checkout.sessions.create(params=session_params())
    expired = client.v1.checkout.sessions.expire(session.id)
    assert expired.status == "expired"
    assert expired.url is None
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(session.id)
    types = [e.type for e in client.v1.events.list().data]
    assert types[0] == "checkout.session.expired"


def test_list_sessions_pagination_and_filters(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    ids = [client.v1.checkout.sessions.create(params=session_params()).id for _ in range(5)]
    page = client.v1.checkout.sessions.list(params={"limit": 2})
    assert [s.id for s in page.data] == ids[::-1][:2]
    assert page.has_more
    assert page.url == "/v1/checkout/sessions"
    page2 = client.v1.checkout.sessions.list(params={"limit": 2, "starting_after": page.data[-1].id})
    assert [s.id for s in page2.data] == ids[::-1][2:4]
    before = client.v1.checkout.sessions.list(params={"limit": 2, "ending_before": ids[1]})
    assert [s.id for s in before.data] == [ids[3], ids[2]]
    assert before.has_more
    assert [s.id for s in client.v1.checkout.sessions.list().auto_paging_iter()] == ids[::-1]

    paid = sandbox.control("POST", f"checkout/sessions/{ids[0]}/pay", email="Payer@Example.com")
    pi = paid["payment_intent"]
    by_pi = client.v1.checkout.sessions.list(params={"payment_intent": pi})
    assert [s.id for s in by_pi.data] == [ids[0]]
    assert [s.id for s in client.v1.checkout.sessions.list(params={"status": "complete"}).data] == [ids[0]]
    by_email = client.v1.checkout.sessions.list(params={"customer_details": {"email": "payer@example.com"}})
    assert [s.id for s in by_email.data] == [ids[0]]
    created = client.v1.checkout.sessions.retrieve(ids[0]).created
    assert len(client.v1.checkout.sessions.list(params={"created": {"gte": created}}).data) == 5
    assert client.v1.checkout.sessions.list(params={"created": {"gt": created + 10}}).data == []


def test_payment_objects_and_refunds(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    session = client.v1.checkout.sessions.create(
        params=session_params(
            payment_intent_data={"metadata": {"order_id": "ord_1"}, "description": "Order 1"}
        )
    )
    sandbox.control("POST", f"checkout/sessions/{session.id}/pay", card_number="4242 4242 4242 4242")
    session = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["payment_intent.latest_charge"]}
    )
    assert session.status == "complete"
    assert session.payment_status == "paid"
    pi = session.payment_intent
    assert isinstance(pi, stripe.PaymentIntent)
    assert pi.id.startswith("pi_")
    assert pi.status == "succeeded"
    assert pi.amount_received == 2500
    assert pi.metadata.to_dict() == {"order_id": "ord_1"}
    charge = pi.latest_charge
    assert isinstance(charge, stripe.Charge)
    assert charge.paid
    assert charge.captured
    assert charge.payment_method_details.card.last4 == "4242"

    partial = client.v1.refunds.create(
        params={
            "payment_intent": pi.id,
            "amount": 1000,
            "reason": "requested_by_customer",
            "metadata": {"why": "test"},
        }
    )
    assert partial.id.startswith("re_")
    assert partial.status == "succeeded"
    assert partial.amount == 1000
    assert client.v1.refunds.retrieve(partial.id).metadata.to_dict() == {"why": "test"}
    assert client.v1.charges.retrieve(charge.id).amount_refunded == 1000
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.refunds.create(params={"charge": charge.id, "amount": 1501})
    assert err.value.code == "amount_too_large"
    assert err.value.http_status == 400
    rest = client.v1.refunds.create(params={"charge": charge.id})
    assert rest.amount == 1500
    charge = client.v1.charges.retrieve(charge.id)
    assert charge.refunded
    assert charge.amount_refunded == 2500
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.refunds.create(params={"payment_intent": pi.id})
    assert err.value.code == "charge_already_refunded"
    types = [e.type for e in client.v1.events.list(params={"type": "refund.*"}).data]
    assert types == ["refund.updated", "refund.created", "refund.updated", "refund.created"]
    assert len(client.v1.events.list(params={"types": ["charge.refunded"]}).data) == 2


@pytest.mark.parametrize(
    ("params", "message", "param"),
    [
        ({"line_items": None}, "Missing required param: line_items.", "line_items"),
        ({"success_url": None}, "Missing required param: success_url.", "success_url"),
        ({"foo": "bar"}, "Received unknown parameter: foo", "foo"),
        (
            {
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {
                            "currency": "eur",
                            "unit_amount": 100,
                            "product_data": {"name": "x"},
                            "bogus": 1,
                        },
                    }
                ]
            },
            "Received unknown parameter: line_items[0][price_data][bogus]",
            "line_items[0][price_data][bogus]",
        ),
        (
            {
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {"currency": "xyz", "unit_amount": 100, "product_data": {"name": "x"}},
                    }
                ]
            },
            "Invalid currency: xyz.",
            "line_items[0][price_data][currency]",
        ),
        (
            {
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {"currency": "eur", "unit_amount": -5, "product_data": {"name": "x"}},
                    }
                ]
            },
            "This value must be greater than or equal to 0.",
            "line_items[0][price_data][unit_amount]",
        ),
        (
            {
                "line_items": [
                    {
                        "quantity": 0,
                        "price_data": {"currency": "eur", "unit_amount": 100, "product_data": {"name": "x"}},
                    }
                ]
            },
            "This value must be greater than or equal to 1.",
            "line_items[0][quantity]",
        ),
        (
            {
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {"currency": "eur", "unit_amount": 10, "product_data": {"name": "x"}},
                    }
                ]
            },
            "The Checkout Session's total amount due must add up to at least 0.50 eur",
            None,
        ),
        (
            {"expires_at": 1},
            "The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.",
            "expires_at",
        ),
        ({"mode": "bogus"}, "Invalid mode: must be one of payment, setup, or subscription", "mode"),
        ({"success_url": "not a url"}, "Not a valid URL", "success_url"),
    ],
)
def test_bad_session_params(
    client: stripe.StripeClient, params: dict[str, Any], message: str, param: str | None
) -> None:
    merged = session_params(**params)
    merged = {k: v for k, v in merged.items() if v is not None}
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.checkout.sessions.create(params=merged)
    assert err.value.http_status == 400
    assert err.value.user_message is not None
    assert err.value.user_message.startswith(message)
    assert err.value.param == param
    assert err.value.error is not None
    assert err.value.error.type == "invalid_request_error"


def test_expires_at_bounds(client: stripe.StripeClient) -> None:
    now = int(time.time())
    with pytest.raises(stripe.InvalidRequestError, match="less than 24 hours"):
        client.v1.checkout.sessions.create(params=session_params(expires_at=now + 25 * 3600))
    ok = client.v1.checkout.sessions.create(params=session_params(expires_at=now + 3600))
    assert ok.expires_at == now + 3600


def test_unknown_ids_and_routes(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    cases = [
        (
            lambda: client.v1.checkout.sessions.retrieve("cs_test_missing"),
            "No such checkout.session: 'cs_test_missing'",
        ),
        (lambda: client.v1.payment_intents.retrieve("pi_missing"), "No such payment_intent: 'pi_missing'"),
        (lambda: client.v1.charges.retrieve("ch_missing"), "No such charge: 'ch_missing'"),
        (lambda: client.v1.refunds.retrieve("re_missing"), "No such refund: 're_missing'"),
        (lambda: client.v1.disputes.retrieve("du_missing"), "No such dispute: 'du_missing'"),
        (lambda: client.v1.events.retrieve("evt_missing"), "No such event: 'evt_missing'"),
    ]
    for call, message in cases:
        with pytest.raises(stripe.InvalidRequestError) as err:
            call()
        assert err.value.http_status == 404
        assert err.value.code == "resource_missing"
        assert err.value.user_message == message
    response = httpx.post(f"{sandbox.url}/v1/subscriptions", headers={"Authorization": f"Bearer {TEST_KEY}"})
    assert response.status_code == 404
    assert response.json()["error"]["message"].startswith(
        "Unrecognized request URL (POST: /v1/subscriptions)"
    )


def test_authentication(sandbox: SandboxServer) -> None:
    response = httpx.get(f"{sandbox.url}/v1/events")
    assert response.status_code == 401
    assert response.json()["error"]["message"].startswith("You did not provide an API key.")
    for key in ("sk_live_abc", "nonsense"):
        with pytest.raises(stripe.AuthenticationError) as err:
            sdk_client(sandbox.url, key).v1.events.list()
        assert err.value.http_status == 401
        assert "Invalid API Key provided" in str(err.value.user_message)


def test_pinned_key(receiver: Any) -> None:
    from tests.sandbox.conftest import test_config
    from tests.support.sandbox_server import start_sandbox

    with start_sandbox(test_config(api_key="sk_test_only_this")) as server:
        assert sdk_client(server.url, "sk_test_only_this").v1.events.list().data == []
        with pytest.raises(stripe.AuthenticationError):
            sdk_client(server.url, "sk_test_other").v1.events.list()


def test_idempotency(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    params = session_params()
    first = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "order-1"})
    replay = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "order-1"})
    assert replay.id == first.id
    assert replay.last_response is not None
    assert replay.last_response.headers.get("idempotent-replayed") == "true"
    assert len(client.v1.checkout.sessions.list().data) == 1
    with pytest.raises(stripe.IdempotencyError) as err:
        client.v1.checkout.sessions.create(
            params=session_params(metadata={"order_id": "other"}), options={"idempotency_key": "order-1"}
        )
    assert err.value.http_status == 400
    assert err.value.error is not None
    assert err.value.error.type == "idempotency_error"
    # Raw HTTP: same status and body on replay.
    headers = {"Authorization": f"Bearer {TEST_KEY}", "Idempotency-Key": "raw-1"}
    body = {"mode": "payment", "success_url": "https://x.example/ok"}
    one = httpx.post(f"{sandbox.url}/v1/checkout/sessions", data=body, headers=headers)
    two = httpx.post(f"{sandbox.url}/v1/checkout/sessions", data=body, headers=headers)
    assert one.status_code == 400  # validation failures are not cached, and not replayed
    assert "idempotent-replayed" not in two.headers
    body["line_items[0][price]"] = "price_missing"


def test_events_filters(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    session = client.v1.checkout.sessions.create(params=session_params())
    sandbox.control("POST", f"checkout/sessions/{session.id}/pay")
    sandbox.flush()
    all_events = client.v1.events.list(params={"limit": 100}).data
    assert [e.type for e in all_events] == [
        "checkout.session.completed",
        "payment_intent.succeeded",
        "charge.succeeded",
        "payment_intent.created",
    ]
    newest = all_events[0]
    assert newest.api_version == stripe.api_version
    assert newest.request.id is None
    assert newest.data.object.id == session.id
    assert newest.pending_webhooks == 0
    wildcard = client.v1.events.list(params={"type": "payment_intent.*"}).data
    assert [e.type for e in wildcard] == ["payment_intent.succeeded", "payment_intent.created"]
    assert len(client.v1.events.list(params={"delivery_success": True}).data) == 4
    assert client.v1.events.list(params={"delivery_success": False}).data == []
    assert len(client.v1.events.list(params={"created": {"lte": newest.created}}).data) == 4
    assert client.v1.events.list(params={"created": {"gt": newest.created}}).data == []
    page = client.v1.events.list(params={"limit": 1, "starting_after": newest.id})
    assert page.data[0].type == "payment_intent.succeeded"
    assert page.has_more
    assert client.v1.events.retrieve(newest.id).id == newest.id
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.events.list(params={"limit": 101})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.events.list(params={"type": "a", "types": ["b"]})


def test_async_sdk(sandbox: SandboxServer) -> None:
    async def main() -> None:
        client = stripe.StripeClient(
            TEST_KEY, base_addresses={"api": sandbox.url}, http_client=stripe.HTTPXClient()
        )
        session = await client.v1.checkout.sessions.create_async(params=session_params())
        got = await client.v1.checkout.sessions.retrieve_async(session.id, params={"expand": ["line_items"]})
        assert got.line_items.data[0].quantity == 2
        listed = await client.v1.checkout.sessions.list_async(params={"limit": 1})
        assert listed.data[0].id == session.id
        expired = await client.v1.checkout.sessions.expire_async(session.id)
        assert expired.status == "expired"
        with pytest.raises(stripe.InvalidRequestError):
            await client.v1.checkout.sessions.retrieve_async("cs_test_nope")

    anyio.run(main)


def test_stripe_version_header(sandbox: SandboxServer) -> None:
    headers = {"Authorization": f"Bearer {TEST_KEY}", "Stripe-Version": "2024-06-20"}
    ok = httpx.get(f"{sandbox.url}/v1/events", headers=headers)
    assert ok.status_code == 200
    assert ok.headers["stripe-version"] == "2024-06-20"
    assert ok.headers["request-id"].startswith("req_")
    bad = httpx.get(f"{sandbox.url}/v1/events", headers={**headers, "Stripe-Version": "yesterday"})
    assert bad.status_code == 400
    assert "Invalid Stripe API version" in bad.json()["error"]["message"]
