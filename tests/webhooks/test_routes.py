"""POST /webhooks/stripe over real HTTP: signatures, limits, failures and concurrent redelivery."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.sql import run
from app.money.ledger import BalanceView, balances, check_invariant
from app.money.models import LedgerEntry, StripeEvent
from app.settings import Settings
from app.webhooks.signature import sign
from tests.webhooks.factories import checkout_session, event, new_order, signed

pytestmark = pytest.mark.anyio

Sessions = async_sessionmaker[AsyncSession]
OLD_SECRET = "whsec_old_rotated_out_but_still_valid"


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    # A dead Stripe address: the sandbox is not mounted and nothing here calls Stripe.
    return replace(
        settings,
        stripe_api_base="http://127.0.0.1:9",
        stripe_webhook_secrets=(*settings.stripe_webhook_secrets, OLD_SECRET),
    )


async def _stored(sessions: Sessions) -> int:
    async with sessions() as db:
        return int(await db.scalar(select(func.count()).select_from(StripeEvent)) or 0)


def _rejected(reason: str) -> float:
    return REGISTRY.get_sample_value("storefront_webhook_rejected_total", {"reason": reason}) or 0.0


async def _post(base_url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        return await client.post("/webhooks/stripe", content=body, headers=headers)


async def test_signed_event_is_credited_after_commit(
    base_url: str, app_settings: Settings, sessions: Sessions
) -> None:
    order = await new_order(sessions)
    body, headers = signed(
        event("checkout.session.completed", checkout_session(order)), app_settings.stripe_webhook_secrets[0]
    )
    response = await _post(base_url, body, headers)
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == f"credited order {order.id}"
    async with sessions() as db:  # the answer came after the commit: visible now
        assert (await run(db, balances, order.user_id))["coins"] == BalanceView(1100, 0)
    again = await _post(base_url, body, headers)
    assert again.status_code == 200
    assert again.json()["duplicate"] is True


async def test_rotated_second_secret_is_accepted(base_url: str, sessions: Sessions) -> None:
    order = await new_order(sessions)
    body, headers = signed(event("checkout.session.completed", checkout_session(order)), OLD_SECRET)
    assert (await _post(base_url, body, headers)).status_code == 200


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("forged", "bad_signature"),
        ("wrong_secret", "bad_signature"),
        ("stale", "stale_timestamp"),
        ("no_header", "missing_signature"),
        ("garbled_header", "malformed_header"),
        ("bad_json", "malformed_payload"),
        ("not_an_event", "malformed_payload"),
    ],
)
async def test_refused_deliveries_store_nothing(
    base_url: str, app_settings: Settings, sessions: Sessions, case: str, reason: str
) -> None:
    order = await new_order(sessions)
    secret = app_settings.stripe_webhook_secrets[0]
    body, headers = signed(event("checkout.session.completed", checkout_session(order)), secret)
    if case == "forged":
        headers["stripe-signature"] = headers["stripe-signature"][:-4] + "0000"
    elif case == "wrong_secret":
        headers["stripe-signature"] = sign(body, "whsec_somebody_else")
    elif case == "stale":
        headers["stripe-signature"] = sign(body, secret, int(time.time()) - 301)
    elif case == "no_header":
        del headers["stripe-signature"]
    elif case == "garbled_header":
        headers["stripe-signature"] = "v1=abc,t=notanumber"
    elif case == "bad_json":
        body = b'{"id": "evt_1", "type": '
        headers["stripe-signature"] = sign(body, secret)
    elif case == "not_an_event":
        body = json.dumps({"id": "evt_2", "type": "x"}).encode()
        headers["stripe-signature"] = sign(body, secret)
    before = _rejected(reason)
    response = await _post(base_url, body, headers)
    assert response.status_code == 400
    assert response.json() == {"error": reason}
    assert _rejected(reason) == before + 1
    assert await _stored(sessions) == 0
    async with sessions() as db:
        assert await run(db, balances, order.user_id) == {}


async def test_oversized_body_is_413(base_url: str, app_settings: Settings, sessions: Sessions) -> None:
    ev = event("customer.created", {"id": "cus_1", "description": "x" * 300_000})
    body, headers = signed(ev, app_settings.stripe_webhook_secrets[0])
    response = await _post(base_url, body, headers)
    assert response.status_code == 413
    assert await _stored(sessions) == 0


async def test_unknown_type_is_stored_and_acknowledged(
    base_url: str, app_settings: Settings, sessions: Sessions
) -> None:
    ev = event("customer.created", {"id": "cus_1"})
    response = await _post(base_url, *signed(ev, app_settings.stripe_webhook_secrets[0]))
    assert response.status_code == 200
    assert response.json()["outcome"] == "ignored"
    async with sessions() as db:
        row = await db.get(StripeEvent, ev["id"])
        assert row is not None
        assert row.type == "customer.created"


async def test_failing_effect_is_5xx_and_not_stored(
    base_url: str, app_settings: Settings, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.money.events as processing

    def boom(*_: Any) -> None:
        raise RuntimeError("effect failed")

    monkeypatch.setitem(processing.HANDLERS, "checkout.session.completed", boom)
    order = await new_order(sessions)
    failing = event("checkout.session.completed", checkout_session(order))
    fine = event("customer.created", {"id": "cus_2"})
    secret = app_settings.stripe_webhook_secrets[0]
    # sent together, so on SQLite they may share a commit batch: only the failing one rolls back
    bad, good = await asyncio.gather(
        _post(base_url, *signed(failing, secret)), _post(base_url, *signed(fine, secret))
    )
    assert bad.status_code == 500
    assert good.status_code == 200
    async with sessions() as db:
        assert await db.get(StripeEvent, failing["id"]) is None
        assert await db.get(StripeEvent, fine["id"]) is not None
        assert await run(db, balances, order.user_id) == {}


async def test_fifty_simultaneous_deliveries_credit_once(
    base_url: str, app_settings: Settings, sessions: Sessions
) -> None:
    order = await new_order(sessions)
    body, headers = signed(
        event("checkout.session.completed", checkout_session(order)), app_settings.stripe_webhook_secrets[0]
    )
    async with httpx.AsyncClient(
        base_url=base_url, timeout=30, limits=httpx.Limits(max_connections=50)
    ) as client:
        responses = await asyncio.gather(
            *(client.post("/webhooks/stripe", content=body, headers=headers) for _ in range(50))
        )
    assert [r.status_code for r in responses] == [200] * 50
    assert sum(1 for r in responses if not r.json()["duplicate"]) == 1
    async with sessions() as db:
        credits = await db.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.order_id == order.id)
        )
        assert credits == 1
        assert (await run(db, balances, order.user_id))["coins"] == BalanceView(1100, 0)
        assert await run(db, check_invariant) == []
