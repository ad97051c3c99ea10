"""Webhook delivery: Stripe signatures, retries with backoff, delivery_success and seeded chaos."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest
import stripe

from app.sandbox import ChaosConfig
from tests.sandbox.conftest import WEBHOOK_SECRET, Receiver, sdk_client, session_params, test_config
from tests.support.sandbox_server import SandboxServer, start_sandbox


def _buy(client: stripe.StripeClient, sandbox: SandboxServer, **pay: Any) -> str:
    session = client.v1.checkout.sessions.create(params=session_params())
    sandbox.control("POST", f"checkout/sessions/{session.id}/pay", **pay)
    return session.id


def test_signatures_verify_with_sdk(
    client: stripe.StripeClient, sandbox: SandboxServer, receiver: Receiver
) -> None:
    sid = _buy(client, sandbox)
    assert sandbox.flush()
    assert sorted(receiver.types()) == sorted(
        [
            "payment_intent.created",
            "charge.succeeded",
            "payment_intent.succeeded",
            "checkout.session.completed",
        ]
    )
    for request in receiver.requests:
        header = request["headers"]["Stripe-Signature"]
        assert request["headers"]["Content-Type"].startswith("application/json")
        event = stripe.Webhook.construct_event(request["body"], header, WEBHOOK_SECRET)
        assert event.id.startswith("evt_")
        assert event.livemode is False
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(request["body"], header, "whsec_wrong")
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(request["body"] + " ", header, WEBHOOK_SECRET)
    completed = next(e for e in receiver.events() if e["type"] == "checkout.session.completed")
    assert completed["data"]["object"]["id"] == sid
    # A stale timestamp fails the SDK's default 300 s tolerance.
    request = receiver.requests[0]
    timestamp = int(request["headers"]["Stripe-Signature"].split(",")[0][2:])
    from app.sandbox.delivery import sign

    stale = sign(request["body"], WEBHOOK_SECRET, timestamp - 3600)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(request["body"], stale, WEBHOOK_SECRET)
    fresh = sign(request["body"], WEBHOOK_SECRET, int(time.time()))
    assert stripe.Webhook.construct_event(request["body"], fresh, WEBHOOK_SECRET).id.startswith("evt_")


def test_retries_with_backoff_then_success(receiver: Receiver) -> None:
    receiver.fail_first = 3
    config = test_config(
        webhook_endpoints=[(receiver.url, WEBHOOK_SECRET)], retry_base_delay=2.0, delivery_concurrency=1
    )
    with start_sandbox(config) as sandbox:
        client = sdk_client(sandbox.url)
        session = client.v1.checkout.sessions.create(params=session_params())
        client.v1.checkout.sessions.expire(session.id)
        assert sandbox.flush()
        event = client.v1.events.list().data[0]
        assert event.type == "checkout.session.expired"
        assert event.pending_webhooks == 0
        attempts = sandbox.control("GET", "deliveries")["data"]
        statuses = [a["status"] for a in attempts]
        assert statuses == [500, 500, 500, 200]
        gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(attempts)]
        # base 2 s x 2^n x scale 0.01 = 20, 40, 80 ms
        for gap, expected in zip(gaps, (0.02, 0.04, 0.08), strict=True):
            assert expected * 0.9 <= gap < expected + 0.5
        assert len(client.v1.events.list(params={"delivery_success": True}).data) == 1


def test_delivery_gives_up_and_records_failure(receiver: Receiver) -> None:
    receiver.fail_first = 100
    config = test_config(webhook_endpoints=[(receiver.url, WEBHOOK_SECRET)], max_delivery_attempts=3)
    with start_sandbox(config) as sandbox:
        client = sdk_client(sandbox.url)
        session = client.v1.checkout.sessions.create(params=session_params())
        client.v1.checkout.sessions.expire(session.id)
        assert sandbox.flush()
        failed = client.v1.events.list(params={"delivery_success": False}).data
        assert [e.type for e in failed] == ["checkout.session.expired"]
        assert failed[0].pending_webhooks == 1
        assert client.v1.events.list(params={"delivery_success": True}).data == []
        assert len(receiver.requests) == 3


def test_unreachable_endpoint_times_out_and_is_recorded() -> None:
    config = test_config(
        webhook_endpoints=[("http://127.0.0.1:9/nothing", WEBHOOK_SECRET)],
        max_delivery_attempts=2,
        delivery_timeout=0.5,
    )
    with start_sandbox(config) as sandbox:
        client = sdk_client(sandbox.url)
        client.v1.checkout.sessions.expire(client.v1.checkout.sessions.create(params=session_params()).id)
        assert sandbox.flush()
        attempts = sandbox.control("GET", "deliveries")["data"]
        assert [a["status"] for a in attempts] == [None, None]
        assert all(a["error"] for a in attempts)


def _chaos_run(receiver_url: str, seed: int) -> tuple[list[dict[str, Any]], list[int]]:
    chaos = ChaosConfig(seed=seed, duplicate=0.3, reorder=0.3, delay=0.3, drop=0.3, max_delay=0.05)
    config = test_config(webhook_endpoints=[(receiver_url, WEBHOOK_SECRET)], chaos=chaos)
    with start_sandbox(config) as sandbox:
        client = sdk_client(sandbox.url)
        for _ in range(4):
            _buy(client, sandbox)
        assert sandbox.flush()
        log = sandbox.control("GET", "chaos")["log"]
        per_event = [
            len([a for a in sandbox.state.delivery_attempts if a["event"] == e["id"]])
            for e in sandbox.state.events.dump()
        ]
        assert all(sandbox.state.delivery_succeeded(e["id"]) for e in sandbox.state.events.dump())
    plan = [{k: v for k, v in entry.items() if k != "endpoint"} for entry in log]
    return plan, per_event


def test_chaos_is_reproducible_with_the_same_seed(receiver: Receiver) -> None:
    plan_a, attempts_a = _chaos_run(receiver.url, seed=7)
    plan_b, attempts_b = _chaos_run(receiver.url, seed=7)
    plan_c, _ = _chaos_run(receiver.url, seed=8)
    assert plan_a == plan_b
    assert attempts_a == attempts_b
    assert plan_a != plan_c
    assert any(p["duplicate"] for p in plan_a)
    assert any(p["drop"] for p in plan_a)
    # Every event still arrives at least once; duplicates arrive more than once, as Stripe allows.
    ids = [e["id"] for e in receiver.events()]
    assert len(ids) > len(set(ids))
