"""Manual capture, PaymentIntent capture and cancel, the payment lists, refund cancel and balance
transactions, through the official SDK."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from tests.sandbox.conftest import raw_get, refused, session_params
from tests.sandbox.stripe_spec import conformance_problems
from tests.support.sandbox_server import SandboxServer


def _held(client: stripe.StripeClient, sandbox: SandboxServer, card: str = "4242424242424242") -> Any:
    session = client.v1.checkout.sessions.create(
        params=session_params(payment_intent_data={"capture_method": "manual", "metadata": {"k": "v"}})
    )
    sandbox.control("POST", f"checkout/sessions/{session.id}/pay", card_number=card)
    return client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["payment_intent.latest_charge"]}
    )


def _paid(client: stripe.StripeClient, sandbox: SandboxServer, card: str = "4242424242424242") -> Any:
    session = client.v1.checkout.sessions.create(params=session_params())
    sandbox.control("POST", f"checkout/sessions/{session.id}/pay", card_number=card)
    return client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["payment_intent"]}
    ).payment_intent


def test_manual_capture_holds_then_captures(
    module_client: stripe.StripeClient, module_sandbox: SandboxServer
) -> None:
    client = module_client
    session = _held(client, module_sandbox)
    assert session.status == "complete"
    assert session.payment_status == "unpaid"  # held funds are not yet in the account
    pi = session.payment_intent
    assert (pi.status, pi.capture_method, pi.amount_capturable, pi.amount_received) == (
        "requires_capture",
        "manual",
        2500,
        0,
    )
    charge = pi.latest_charge
    assert (charge.paid, charge.captured, charge.amount_captured, charge.balance_transaction) == (
        True,
        False,
        0,
        None,
    )
    refused(
        lambda: client.v1.refunds.create(params={"payment_intent": pi.id}),
        "payment_intent",
        "does not have a successful charge",
    )

    refused(
        lambda: client.v1.payment_intents.capture(pi.id, params={"amount_to_capture": 2501}),
        "amount_to_capture",
        "must be less than or equal to the amount capturable (2500)",
    )
    refused(
        lambda: client.v1.payment_intents.capture(pi.id, params={"application_fee_amount": 10}),
        "application_fee_amount",
        "does not simulate",
    )
    captured = client.v1.payment_intents.capture(
        pi.id,
        params={
            "amount_to_capture": 2000,
            "metadata": {"k": "", "captured": "yes"},
            "statement_descriptor_suffix": "COINS",
            "expand": ["latest_charge"],
        },
    )
    assert (captured.status, captured.amount_received, captured.amount_capturable) == ("succeeded", 2000, 0)
    assert captured.metadata.to_dict() == {"captured": "yes"}
    assert (captured.latest_charge.captured, captured.latest_charge.amount_captured) == (True, 2000)
    assert (
        captured.statement_descriptor_suffix == captured.latest_charge.statement_descriptor_suffix == "COINS"
    )
    txn = client.v1.balance_transactions.retrieve(
        captured.latest_charge.balance_transaction, params={"expand": ["source"]}
    )
    assert (txn.amount, txn.type, txn.source.id) == (2000, "charge", charge.id)
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.payment_intents.capture(pi.id)
    assert again.value.code == "payment_intent_unexpected_state"
    assert "has a status of succeeded" in str(again.value.user_message)
    refund = client.v1.refunds.create(params={"payment_intent": pi.id})
    assert refund.amount == 2000  # only what was captured
    types = [e.type for e in client.v1.events.list(params={"limit": 20}).data]
    assert {"payment_intent.amount_capturable_updated", "charge.captured", "payment_intent.succeeded"} <= set(
        types
    )


def test_cancel_releases_a_hold(module_client: stripe.StripeClient, module_sandbox: SandboxServer) -> None:
    client = module_client
    pi = _held(client, module_sandbox).payment_intent
    canceled = client.v1.payment_intents.cancel(
        pi.id, params={"cancellation_reason": "requested_by_customer"}
    )
    assert (canceled.status, canceled.cancellation_reason, canceled.amount_capturable) == (
        "canceled",
        "requested_by_customer",
        0,
    )
    assert canceled.canceled_at is not None
    charge = client.v1.charges.retrieve(pi.latest_charge.id)
    assert (charge.refunded, charge.amount_refunded, charge.captured) == (True, 2500, False)
    with pytest.raises(stripe.InvalidRequestError) as twice:
        client.v1.payment_intents.cancel(pi.id)
    assert twice.value.code == "payment_intent_unexpected_state"
    with pytest.raises(stripe.InvalidRequestError, match="status of canceled"):
        client.v1.payment_intents.capture(pi.id)
    succeeded = _paid(client, module_sandbox)
    with pytest.raises(stripe.InvalidRequestError, match="status of succeeded"):
        client.v1.payment_intents.cancel(succeeded.id)
    # A declined attempt leaves an open session's PaymentIntent: expire the session instead.
    session = client.v1.checkout.sessions.create(params=session_params())
    module_sandbox.control("POST", f"checkout/sessions/{session.id}/pay", card_number="4000000000000002")
    attempt = client.v1.payment_intents.list(params={"limit": 1}).data[0]
    assert attempt.status == "requires_payment_method"
    with pytest.raises(stripe.InvalidRequestError, match="Expire the Checkout Session"):
        client.v1.payment_intents.cancel(attempt.id)
    refused(
        lambda: client.v1.payment_intents.cancel(attempt.id, params={"cancellation_reason": "bored"}),
        "cancellation_reason",
        "must be one of",
    )
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.payment_intents.cancel("pi_missing")
    assert missing.value.http_status == 404
    assert missing.value.user_message == "No such payment_intent: 'pi_missing'"


def test_an_uncaptured_hold_is_released_after_seven_days(
    module_client: stripe.StripeClient, module_sandbox: SandboxServer
) -> None:
    pi = _held(module_client, module_sandbox).payment_intent
    module_sandbox.control("POST", "clock/advance", seconds=7 * 24 * 3600 - 120)
    assert module_client.v1.payment_intents.retrieve(pi.id).status == "requires_capture"
    module_sandbox.control("POST", "clock/advance", seconds=120)
    expired = module_client.v1.payment_intents.retrieve(pi.id, params={"expand": ["latest_charge"]})
    assert (expired.status, expired.cancellation_reason) == ("canceled", "automatic")
    assert (expired.latest_charge.refunded, expired.latest_charge.captured) == (True, False)
    with pytest.raises(stripe.InvalidRequestError, match="status of canceled"):
        module_client.v1.payment_intents.capture(pi.id)


def test_capture_idempotency(module_client: stripe.StripeClient, module_sandbox: SandboxServer) -> None:
    pi = _held(module_client, module_sandbox).payment_intent
    first = module_client.v1.payment_intents.capture(pi.id, options={"idempotency_key": f"cap-{pi.id}"})
    replay = module_client.v1.payment_intents.capture(pi.id, options={"idempotency_key": f"cap-{pi.id}"})
    assert replay.status == first.status == "succeeded"
    assert replay.last_response is not None
    assert replay.last_response.headers["idempotent-replayed"] == "true"
    assert replay.last_response.headers["original-request"] == first.last_response.request_id
    with pytest.raises(stripe.IdempotencyError):
        module_client.v1.payment_intents.capture(
            pi.id, params={"amount_to_capture": 5}, options={"idempotency_key": f"cap-{pi.id}"}
        )


def test_payment_lists(module_client: stripe.StripeClient, module_sandbox: SandboxServer) -> None:
    client = module_client
    pis = [_paid(client, module_sandbox).id for _ in range(3)]
    page = client.v1.payment_intents.list(params={"limit": 2})
    assert [p.id for p in page.data] == pis[::-1][:2]
    assert page.has_more is True
    assert page.url == "/v1/payment_intents"
    older = client.v1.payment_intents.list(params={"limit": 1, "starting_after": pis[1]})
    assert [p.id for p in older.data] == [pis[0]]
    newer = client.v1.payment_intents.list(params={"ending_before": pis[0]})
    assert [p.id for p in newer.data] == [pis[2], pis[1]]
    charges = client.v1.charges.list(params={"payment_intent": pis[1]})
    assert [c.payment_intent for c in charges.data] == [pis[1]]
    assert charges.url == "/v1/charges"
    assert client.v1.charges.list(params={"limit": 3}).data[0].payment_intent == pis[2]
    charge_id = charges.data[0].id
    refunds = [client.v1.refunds.create(params={"charge": charge_id, "amount": 100 + i}).id for i in range(3)]
    by_charge = client.v1.refunds.list(params={"charge": charge_id, "limit": 2})
    assert [r.id for r in by_charge.data] == refunds[::-1][:2]
    assert by_charge.has_more is True
    assert by_charge.url == "/v1/refunds"
    assert [
        r.id for r in client.v1.refunds.list(params={"payment_intent": pis[1]}).auto_paging_iter()
    ] == refunds[::-1]
    assert client.v1.refunds.list(params={"payment_intent": pis[0]}).data == []
    disputed = _paid(client, module_sandbox, "4000000000000259")
    disputes = client.v1.disputes.list(params={"payment_intent": disputed.id})
    assert [d.payment_intent for d in disputes.data] == [disputed.id]
    assert disputes.url == "/v1/disputes"
    assert (
        client.v1.disputes.list(params={"charge": disputes.data[0].charge}).data[0].id == disputes.data[0].id
    )
    created = client.v1.payment_intents.retrieve(pis[0]).created
    assert len(client.v1.payment_intents.list(params={"created": {"gte": created}, "limit": 100}).data) >= 4
    earlier = client.v1.payment_intents.list(params={"created": {"lt": created}, "limit": 100}).data
    assert all(p.created < created for p in earlier)
    assert not {p.id for p in earlier} & set(pis)
    found = client.v1.payment_intents.search(
        params={"query": f'status:"succeeded" AND amount>={2500}', "limit": 2}
    )
    assert len(found.data) == 2
    assert all(p.status == "succeeded" for p in found.data)
    with pytest.raises(stripe.InvalidRequestError) as bad:
        client.v1.payment_intents.list(params={"starting_after": "pi_missing"})
    assert bad.value.param == "starting_after"


def test_refund_cancel_and_balance_transactions(
    module_client: stripe.StripeClient, module_sandbox: SandboxServer
) -> None:
    client = module_client
    pi = _paid(client, module_sandbox)
    refund = client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 500})
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.refunds.cancel(refund.id)
    assert err.value.http_status == 400
    assert "status of succeeded" in str(err.value.user_message)
    assert "requires_action" in str(err.value.user_message)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.refunds.cancel("re_missing")
    assert missing.value.http_status == 404
    txn = client.v1.balance_transactions.retrieve(refund.balance_transaction)
    assert (txn.amount, txn.type, txn.source) == (-500, "refund", refund.id)
    with pytest.raises(stripe.InvalidRequestError) as nope:
        client.v1.balance_transactions.retrieve("txn_missing")
    assert nope.value.user_message == "No such balance_transaction: 'txn_missing'"


def test_payment_objects_conform(module_client: stripe.StripeClient, module_sandbox: SandboxServer) -> None:
    held = _held(module_client, module_sandbox).payment_intent
    objects = [
        raw_get(module_sandbox, f"/v1/payment_intents/{held.id}"),
        raw_get(module_sandbox, f"/v1/charges/{held.latest_charge.id}"),
    ]
    module_client.v1.payment_intents.capture(held.id, params={"amount_to_capture": 1000})
    canceled = _held(module_client, module_sandbox).payment_intent
    module_client.v1.payment_intents.cancel(canceled.id)
    _paid(module_client, module_sandbox, "4000000000000259")
    charge = raw_get(module_sandbox, f"/v1/charges/{held.latest_charge.id}")
    objects += [
        raw_get(module_sandbox, f"/v1/payment_intents/{held.id}"),
        raw_get(module_sandbox, f"/v1/payment_intents/{canceled.id}"),
        charge,
        raw_get(module_sandbox, f"/v1/balance_transactions/{charge['balance_transaction']}"),
        raw_get(module_sandbox, "/v1/payment_intents?limit=5"),
        raw_get(module_sandbox, "/v1/charges?limit=5&expand[]=data.balance_transaction"),
        raw_get(module_sandbox, "/v1/refunds?limit=5"),
        raw_get(module_sandbox, "/v1/disputes?limit=5"),
        raw_get(module_sandbox, "/v1/events?limit=30"),
    ]
    assert sorted({p for obj in objects for p in conformance_problems(obj)}) == []
