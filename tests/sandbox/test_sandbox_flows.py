"""Payment flows driven by the control API: declines, 3DS, clock expiry, bank debits, disputes,
persistence and mounting under a prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
from litestar import Litestar, asgi
from litestar.types import Receive, Scope, Send

from app.sandbox import get_runtime
from tests.sandbox.conftest import WEBHOOK_SECRET, Receiver, sdk_client, session_params, test_config
from tests.support.sandbox_server import TEST_KEY, SandboxServer, run_sandbox, start_sandbox


def _types(client: stripe.StripeClient) -> list[str]:
    return [e.type for e in reversed(client.v1.events.list(params={"limit": 100}).data)]


@pytest.mark.parametrize(
    ("card", "code", "decline_code", "message"),
    [
        ("4000000000000002", "card_declined", "generic_decline", "Your card was declined."),
        ("4000000000009995", "card_declined", "insufficient_funds", "Your card has insufficient funds."),
        ("4000000000000069", "expired_card", "expired_card", "Your card has expired."),
        ("4000000000000127", "incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect."),
        (
            "4000000000000119",
            "processing_error",
            "processing_error",
            "An error occurred while processing your card. Try again in a little bit.",
        ),
    ],
)
def test_declines_keep_session_open(
    client: stripe.StripeClient, sandbox: SandboxServer, card: str, code: str, decline_code: str, message: str
) -> None:
    session = client.v1.checkout.sessions.create(params=session_params())
    result = sandbox.control("POST", f"checkout/sessions/{session.id}/pay", card_number=card)
    assert result["status"] == "declined"
    assert result["message"] == message
    assert result["code"] == code
    assert result["decline_code"] == decline_code
    again = client.v1.checkout.sessions.retrieve(session.id)
    assert again.status == "open"
    assert again.payment_intent is None
    pi = client.v1.payment_intents.retrieve(result["payment_intent"])
    assert pi.status == "requires_payment_method"
    assert pi.last_payment_error is not None
    assert pi.last_payment_error.decline_code == decline_code
    assert _types(client) == ["payment_intent.created", "charge.failed", "payment_intent.payment_failed"]
    # The same PaymentIntent is reused for the retry that succeeds.
    ok = sandbox.control("POST", f"checkout/sessions/{session.id}/pay", card_number="4242424242424242")
    assert ok["status"] == "succeeded"
    assert ok["payment_intent"] == pi.id
    assert client.v1.checkout.sessions.retrieve(session.id).payment_intent == pi.id


@pytest.mark.parametrize("card", ["4000002500003155", "4000000000003220"])
def test_three_d_secure(client: stripe.StripeClient, sandbox: SandboxServer, card: str) -> None:
    session = client.v1.checkout.sessions.create(params=session_params())
    failed = sandbox.control(
        "POST", f"checkout/sessions/{session.id}/pay", card_number=card, three_d_secure="fail"
    )
    assert failed["status"] == "declined"
    assert failed["code"] == "payment_intent_authentication_failure"
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    ok = sandbox.control("POST", f"checkout/sessions/{session.id}/pay", card_number=card)
    assert ok["status"] == "succeeded"
    charge = client.v1.charges.retrieve(
        client.v1.payment_intents.retrieve(ok["payment_intent"]).latest_charge
    )
    assert charge.payment_method_details.card.three_d_secure.result == "authenticated"
    assert _types(client) == [
        "payment_intent.created",
        "payment_intent.requires_action",
        "payment_intent.payment_failed",
        "payment_intent.requires_action",
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ]


def test_clock_advance_expires_sessions(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    import time

    short = client.v1.checkout.sessions.create(params=session_params(expires_at=int(time.time()) + 1800))
    long = client.v1.checkout.sessions.create(params=session_params())
    declined = client.v1.checkout.sessions.create(params=session_params(expires_at=int(time.time()) + 1900))
    sandbox.control("POST", f"checkout/sessions/{declined.id}/pay", card_number="4000000000000002")
    clock = sandbox.control("POST", "clock/advance", seconds=2000)
    assert clock["clock"] >= short.expires_at
    assert client.v1.checkout.sessions.retrieve(short.id).status == "expired"
    assert client.v1.checkout.sessions.retrieve(declined.id).status == "expired"
    assert client.v1.checkout.sessions.retrieve(long.id).status == "open"
    types = _types(client)
    assert types.count("checkout.session.expired") == 2
    assert "payment_intent.canceled" in types
    sandbox.control("POST", "clock/advance", seconds=24 * 3600)
    assert client.v1.checkout.sessions.retrieve(long.id).status == "expired"
    # Paying an expired session is refused.
    response = httpx.post(
        f"{sandbox.url}/_sandbox/checkout/sessions/{long.id}/pay",
        headers={"Authorization": f"Bearer {TEST_KEY}"},
        json={},
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("currency", "account", "succeeds"),
    [
        ("eur", "DE89370400440532013000", True),
        ("eur", "DE62370400440532013001", False),
        ("usd", "000123456789", True),
        ("usd", "000111111113", False),
    ],
)
def test_delayed_bank_debit(
    client: stripe.StripeClient,
    sandbox: SandboxServer,
    receiver: Receiver,
    currency: str,
    account: str,
    succeeds: bool,
) -> None:
    items = [
        {
            "quantity": 1,
            "price_data": {"currency": currency, "unit_amount": 5000, "product_data": {"name": "API quota"}},
        }
    ]
    session = client.v1.checkout.sessions.create(params=session_params(line_items=items))
    result = sandbox.control("POST", f"checkout/sessions/{session.id}/pay", bank_account=account)
    assert result["status"] == "processing"
    pending = client.v1.checkout.sessions.retrieve(session.id)
    assert pending.status == "complete"
    assert pending.payment_status == "unpaid"
    assert client.v1.payment_intents.retrieve(pending.payment_intent).status == "processing"
    sandbox.control("POST", "clock/advance", seconds=61)
    settled = client.v1.checkout.sessions.retrieve(session.id)
    pi = client.v1.payment_intents.retrieve(settled.payment_intent)
    types = _types(client)
    if succeeds:
        assert settled.payment_status == "paid"
        assert pi.status == "succeeded"
        assert types[-1] == "checkout.session.async_payment_succeeded"
    else:
        assert settled.payment_status == "unpaid"
        assert pi.status == "requires_payment_method"
        assert types[-1] == "checkout.session.async_payment_failed"
    assert types[:4] == [
        "payment_intent.created",
        "payment_intent.processing",
        "charge.pending",
        "checkout.session.completed",
    ]
    sandbox.flush()
    completed = next(e for e in receiver.events() if e["type"] == "checkout.session.completed")
    assert completed["data"]["object"]["payment_status"] == "unpaid"


def test_bank_debit_settles_by_itself(receiver: Receiver) -> None:
    with start_sandbox(test_config(async_payment_delay=0.2)) as sandbox:
        client = sdk_client(sandbox.url)
        session = client.v1.checkout.sessions.create(params=session_params())
        sandbox.control("POST", f"checkout/sessions/{session.id}/pay", bank_account="DE89370400440532013000")
        import time

        deadline = time.monotonic() + 5
        while client.v1.checkout.sessions.retrieve(session.id).payment_status != "paid":
            assert time.monotonic() < deadline
            time.sleep(0.1)


@pytest.mark.parametrize("outcome", ["won", "lost"])
def test_disputes(client: stripe.StripeClient, sandbox: SandboxServer, outcome: str) -> None:
    session = client.v1.checkout.sessions.create(params=session_params())
    paid = sandbox.control("POST", f"checkout/sessions/{session.id}/pay", card_number="4000000000000259")
    assert paid["status"] == "succeeded"
    charge_id = client.v1.payment_intents.retrieve(paid["payment_intent"]).latest_charge
    assert isinstance(charge_id, str)
    assert client.v1.charges.retrieve(charge_id).disputed
    disputes = list(client.v1.events.list(params={"type": "charge.dispute.created"}).data)
    dispute_id = disputes[0].data.object.id
    assert dispute_id.startswith("du_")
    dispute = client.v1.disputes.retrieve(dispute_id)
    assert dispute.status == "needs_response"
    assert dispute.charge == charge_id
    assert dispute.amount == 2500
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.refunds.create(params={"charge": charge_id})
    assert err.value.code == "charge_disputed"
    closed = sandbox.control("POST", f"disputes/{dispute_id}/close", outcome=outcome)
    assert closed["status"] == outcome
    types = _types(client)
    closing = (
        ["charge.dispute.closed", "charge.dispute.funds_reinstated"]
        if outcome == "won"
        else ["charge.dispute.closed"]
    )
    assert types[-(3 + len(closing)) :] == [
        "checkout.session.completed",
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
        *closing,
    ]
    with pytest.raises(httpx.HTTPStatusError):
        sandbox.control("POST", f"disputes/{dispute_id}/close", outcome="won")


def test_state_file_survives_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "sandbox.json"
    config = test_config(state_file=state_file, save_debounce=0.01)
    with start_sandbox(config) as sandbox:
        client = sdk_client(sandbox.url)
        session = client.v1.checkout.sessions.create(
            params=session_params(), options={"idempotency_key": "k1"}
        )
        sandbox.control("POST", f"checkout/sessions/{session.id}/pay")
        sandbox.control("POST", "clock/advance", seconds=10)
    assert state_file.exists()
    with start_sandbox(config) as sandbox:
        client = sdk_client(sandbox.url)
        again = client.v1.checkout.sessions.retrieve(session.id)
        assert again.status == "complete"
        assert again.payment_status == "paid"
        assert len(client.v1.events.list().data) == 4
        replay = client.v1.checkout.sessions.create(
            params=session_params(), options={"idempotency_key": "k1"}
        )
        assert replay.id == session.id
        assert sandbox.state.clock_offset == 10


def test_control_requires_auth_and_validates(sandbox: SandboxServer) -> None:
    response = httpx.post(f"{sandbox.url}/_sandbox/clock/advance", json={"seconds": 5})
    assert response.status_code == 401
    with pytest.raises(httpx.HTTPStatusError):
        sandbox.control("POST", "clock/advance", seconds="soon")
    with pytest.raises(httpx.HTTPStatusError):
        sandbox.control("POST", "clock/advance", seconds=-5)
    status = sandbox.control("GET", "status")
    assert status["sandbox"] is True
    assert status["counts"]["checkout_sessions"] == 0


def test_python_state_api(sandbox: SandboxServer) -> None:
    """In-process tests can drive the same operations as plain Python methods."""
    client = sdk_client(sandbox.url)
    price = sandbox.call(
        lambda: sandbox.state.register_price(
            currency="eur", unit_amount=700, product_name="Quota pack", price_id="price_quota"
        )
    )
    assert price["id"] == "price_quota"
    session = client.v1.checkout.sessions.create(
        params=session_params(line_items=[{"price": "price_quota", "quantity": 1}])
    )
    result = sandbox.call(lambda: sandbox.state.pay_session(session.id, card_number="4242424242424242"))
    assert result.status == "succeeded"
    now = sandbox.call(lambda: sandbox.state.advance_clock(5))
    assert now >= session.created + 5
    assert sandbox.flush(5)


def _mounted(inner: Any) -> Litestar:
    @asgi("/sandbox", is_mount=True, copy_scope=True)
    async def forward(scope: Scope, receive: Receive, send: Send) -> None:
        await inner(scope, receive, send)

    # A mounted app's lifespan isn't run by the outer app, so the host wires it in.
    return Litestar(route_handlers=[forward], lifespan=[get_runtime(inner).lifespan])


def test_mounted_under_prefix(receiver: Receiver) -> None:
    config = test_config(webhook_endpoints=[(receiver.url, WEBHOOK_SECRET)], business_name="Example <Shop>")
    with start_sandbox(config, app_factory=_mounted, mount_prefix="/sandbox") as sandbox:
        assert sandbox.url.endswith("/sandbox")
        client = sdk_client(sandbox.url)
        session = client.v1.checkout.sessions.create(params=session_params())
        assert session.url == f"{sandbox.url}/c/pay/{session.id}"
        assert client.v1.checkout.sessions.retrieve(session.id).id == session.id
        page = httpx.get(session.url)
        assert page.status_code == 200
        assert "Card number" in page.text
        assert "Pay Example &lt;Shop&gt;" in page.text  # the business it names, as Stripe's page does
        paid = httpx.post(
            session.url,
            data={
                "email": "a@b.example",
                "card_number": "4242424242424242",
                "expiry": "12 / 40",
                "cvc": "123",
                "name": "A",
                "method": "card",
            },
        )
        assert paid.status_code == 303
        assert paid.headers["location"] == f"https://shop.example/checkout/success?session_id={session.id}"
        missing = httpx.get(f"{sandbox.url}/v1/nope", headers={"Authorization": f"Bearer {TEST_KEY}"})
        assert missing.status_code == 404
        assert "Unrecognized request URL" in missing.json()["error"]["message"]
        assert sandbox.flush()
        assert "checkout.session.completed" in receiver.types()


def test_run_sandbox_yields_base_url() -> None:
    with run_sandbox(test_config()) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        assert sdk_client(base_url).v1.events.list().data == []
