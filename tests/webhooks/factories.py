"""Rows and Stripe-shaped events for ledger, fulfilment and webhook tests."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.accounts.models import User
from app.db.config import make_engine
from app.money.models import Order, OrderStatus
from app.settings import Settings
from app.webhooks.signature import sign

Obj = dict[str, Any]


@asynccontextmanager
async def session_factory(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(settings)
    try:
        yield async_sessionmaker(engine, expire_on_commit=False)
    finally:
        await engine.dispose()


async def make_user(db: AsyncSession, email: str | None = None) -> User:
    user = User(email=email or f"buyer-{secrets.token_hex(4)}@example.test", password_hash="x")
    db.add(user)
    await db.flush()
    return user


async def make_order(
    db: AsyncSession,
    user: User,
    *,
    units: int = 1000,
    bonus: int = 100,
    amount: int = 999,
    currency: str = "usd",
    status: OrderStatus = OrderStatus.OPEN,
    session_id: str | None = None,
) -> Order:
    order = Order(
        user_id=user.id,
        pack_id="coins-1000",
        pack_name="1,000 coins",
        asset="coins",
        units=units,
        bonus=bonus,
        amount=amount,
        currency=currency,
        status=status.value,
        stripe_session_id=session_id if session_id is not None else "cs_test_" + secrets.token_hex(12),
    )
    db.add(order)
    await db.flush()
    return order


async def new_order(sessions: async_sessionmaker[AsyncSession]) -> Order:
    """A buyer and an open order of theirs, committed."""
    async with sessions() as db, db.begin():
        return await make_order(db, await make_user(db))


def checkout_session(
    order: Order,
    *,
    payment_status: str = "paid",
    status: str = "complete",
    amount: int | None = None,
    currency: str | None = None,
    payment_intent: str | None = None,
    session_id: str | None = None,
) -> Obj:
    return {
        "id": session_id or order.stripe_session_id,
        "object": "checkout.session",
        "amount_subtotal": order.amount,
        "amount_total": order.amount if amount is None else amount,
        "currency": (currency or order.currency).lower(),
        "metadata": {"order_id": str(order.id)},
        "mode": "payment",
        "payment_intent": payment_intent or pi_for(order),
        "payment_status": payment_status,
        "status": status,
    }


def pi_for(order: Order) -> str:
    return f"pi_test_order{order.id}_{order.stripe_session_id}"[:60]


def event(event_type: str, obj: Obj, *, event_id: str | None = None, created: int | None = None) -> Obj:
    return {
        "id": event_id or "evt_" + secrets.token_hex(12),
        "object": "event",
        "api_version": "2026-07-28",
        "created": created or int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def refund(order: Order, amount: int, *, refund_id: str | None = None, status: str = "succeeded") -> Obj:
    return {
        "id": refund_id or "re_" + secrets.token_hex(10),
        "object": "refund",
        "amount": amount,
        "charge": "ch_" + pi_for(order)[3:],
        "currency": order.currency,
        "payment_intent": pi_for(order),
        "status": status,
    }


def charge_refunded(order: Order, refunds: list[Obj] | None, amount_refunded: int) -> Obj:
    charge: Obj = {
        "id": "ch_" + pi_for(order)[3:],
        "object": "charge",
        "amount": order.amount,
        "amount_refunded": amount_refunded,
        "currency": order.currency,
        "payment_intent": pi_for(order),
        "refunded": amount_refunded >= order.amount,
    }
    if refunds is not None:
        charge["refunds"] = {"object": "list", "data": refunds, "has_more": False, "url": "/v1/refunds"}
    return charge


def dispute(
    order: Order, *, dispute_id: str, status: str = "needs_response", amount: int | None = None
) -> Obj:
    return {
        "id": dispute_id,
        "object": "dispute",
        "amount": order.amount if amount is None else amount,
        "charge": "ch_" + pi_for(order)[3:],
        "currency": order.currency,
        "payment_intent": pi_for(order),
        "reason": "fraudulent",
        "status": status,
    }


def signed(body_obj: Obj, secret: str, *, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """A body and the headers Stripe would send with it."""
    body = json.dumps(body_obj).encode()
    return body, {"stripe-signature": sign(body, secret, timestamp), "content-type": "application/json"}
