"""Data for the customers, events and ledger pages' tests: a buyer with a credited order, a Stripe
event whose effect failed (and whose stored payload an operator has since fixed), a host delivery."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.accounts.models import User
from app.db.sql import run
from app.host_webhooks.delivery import fan_out
from app.host_webhooks.service import add_endpoint
from app.money.events import process_event
from app.money.models import StripeEvent
from app.settings import Settings
from tests.support.aio import run_async
from tests.webhooks.factories import checkout_session, event, new_order, refund, session_factory


@dataclass(frozen=True, slots=True)
class Seeded:
    buyer_id: int
    buyer_email: str
    order_id: int
    failed_event: str
    """A ``refund.created`` stored as failed, its payload fixed since: a replay applies it."""
    paid_event: str
    """The order's ``checkout.session.completed`` (a long type name to lay out)."""


async def _seed(sessions: async_sessionmaker[AsyncSession], external_id: str) -> Seeded:
    async with sessions() as db, db.begin():  # the order's balance.credited is fanned out to it
        await run(db, add_endpoint, "http://127.0.0.1:9/hooks", "*")
    order = await new_order(sessions)
    paid = event("checkout.session.completed", checkout_session(order))
    bad = event("refund.created", {**refund(order, 999, refund_id="re_fixed_later"), "amount": "999"})
    async with sessions() as db, db.begin():
        assert not (await run(db, process_event, paid)).failed
        assert (await run(db, process_event, bad)).failed
    fixed = event("refund.created", refund(order, 999, refund_id="re_fixed_later"), event_id=str(bad["id"]))
    async with sessions() as db, db.begin():
        await db.execute(
            update(StripeEvent).where(StripeEvent.id == bad["id"]).values(payload=json.dumps(fixed))
        )
        await run(db, fan_out, now=int(time.time()))
        email = await db.scalar(
            update(User).where(User.id == order.user_id).values(external_id=external_id).returning(User.email)
        )
    return Seeded(order.user_id, str(email), order.id, str(bad["id"]), str(paid["id"]))


def seed(settings: Settings, external_id: str = "user_42") -> Seeded:
    async def go() -> Seeded:
        async with session_factory(settings) as sessions:
            return await _seed(sessions, external_id)

    return run_async(go())
