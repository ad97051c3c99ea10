"""The order state machine: one conditional UPDATE per move, so a state never goes backwards.

::

    pending -> open -> awaiting_payment -> paid
    pending/open/awaiting_payment -> failed | expired | canceled
    any non-final state -> needs_review

``paid``, ``failed``, ``expired``, ``canceled`` and ``needs_review`` are final, with one
exception taken from Stripe's semantics: Stripe is the authority on money. When Stripe
says a Checkout Session completed and is paid, the order becomes ``paid`` (and is credited)
even if we had marked it ``canceled``/``expired``/``failed`` locally — e.g. the buyer pressed
"cancel" in one tab and paid in another, or our expiry sweep raced the payment. Stripe never
reports a paid session as expired or failed afterwards, and the reverse moves are refused, so
a paid order stays paid whatever arrives late. ``needs_review`` is left to a human.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, cast

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import String, Table, bindparam, func, literal, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.checkout.models import Order, OrderStatus
from app.ledger.service import SqlConnection

__all__ = ("ALLOWED_FROM", "FINAL", "refresh_loaded_order", "transition", "transition_sync")

S = OrderStatus

FINAL: frozenset[OrderStatus] = frozenset({S.PAID, S.FAILED, S.EXPIRED, S.CANCELED, S.NEEDS_REVIEW})

ALLOWED_FROM: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING: frozenset(),
    S.OPEN: frozenset({S.PENDING}),
    S.AWAITING_PAYMENT: frozenset({S.PENDING, S.OPEN}),
    # Late success wins over local cancel/expiry/failure (see the module docstring).
    S.PAID: frozenset({S.PENDING, S.OPEN, S.AWAITING_PAYMENT, S.CANCELED, S.EXPIRED, S.FAILED}),
    S.FAILED: frozenset({S.PENDING, S.OPEN, S.AWAITING_PAYMENT}),
    S.EXPIRED: frozenset({S.PENDING, S.OPEN, S.AWAITING_PAYMENT}),
    S.CANCELED: frozenset({S.PENDING, S.OPEN, S.AWAITING_PAYMENT}),
    S.NEEDS_REVIEW: frozenset({S.PENDING, S.OPEN, S.AWAITING_PAYMENT}),
}
"""For each target state, the states it may be reached from."""


ORDERS = cast(Table, Order.__table__)


@lru_cache(maxsize=16)
def _move(to: OrderStatus, by_session: bool) -> Any:
    """One UPDATE per target state, built once (the allowed predecessors are part of it)."""
    key = ORDERS.c.stripe_session_id == bindparam("sid") if by_session else ORDERS.c.id == bindparam("oid")
    return (
        update(ORDERS)
        .where(key, ORDERS.c.status.in_([literal(s.value) for s in sorted(ALLOWED_FROM[to])]))
        .values(
            status=to.value,
            updated_at=bindparam("now"),
            status_reason=func.coalesce(bindparam("reason", type_=String), ORDERS.c.status_reason),
            stripe_payment_intent_id=func.coalesce(
                bindparam("pi", type_=String), ORDERS.c.stripe_payment_intent_id
            ),
            fulfilled_at=func.coalesce(ORDERS.c.fulfilled_at, bindparam("fulfilled_at", type_=DateTimeUTC())),
        )
        .returning(ORDERS.c.id)
    )


def transition_sync(
    conn: SqlConnection,
    *,
    order_id: int | None = None,
    session_id: str | None = None,
    to: OrderStatus,
    reason: str | None = None,
    payment_intent_id: str | None = None,
    fulfilled_at: datetime | None = None,
) -> int | None:
    """Move one order to ``to`` if its current state allows it; the order's id when it changed."""
    if (order_id is None) == (session_id is None):
        raise ValueError("give exactly one of order_id or session_id")
    if not ALLOWED_FROM[to]:
        return None
    row = conn.execute(
        _move(to, session_id is not None),
        {
            "oid": order_id,
            "sid": session_id,
            "now": datetime.now(UTC),
            "reason": reason[:500] if reason is not None else None,
            "pi": payment_intent_id,
            "fulfilled_at": fulfilled_at,
        },
    ).first()
    return None if row is None else int(row[0])


def refresh_loaded_order(db: AsyncSession, order_id: int) -> Awaitable[Any] | None:
    """Core UPDATEs bypass the ORM: re-read an Order the caller already holds, so it is not stale."""
    for obj in db.identity_map.values():
        if isinstance(obj, Order) and obj.id == order_id:
            return db.refresh(obj)
    return None


async def transition(
    db: AsyncSession,
    *,
    order_id: int | None = None,
    session_id: str | None = None,
    to: OrderStatus,
    reason: str | None = None,
    payment_intent_id: str | None = None,
) -> bool:
    """Move an order (by id or Checkout Session id) to ``to``; False when not allowed from its state.

    Runs in the caller's transaction; an ``Order`` the session already holds is refreshed.
    """
    conn = await db.connection()
    changed = await conn.run_sync(
        lambda c: transition_sync(
            c,
            order_id=order_id,
            session_id=session_id,
            to=to,
            reason=reason,
            payment_intent_id=payment_intent_id,
        )
    )
    if changed is None:
        return False
    pending = refresh_loaded_order(db, changed)
    if pending is not None:
        await pending
    return True
