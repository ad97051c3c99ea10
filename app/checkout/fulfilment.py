"""Stripe's ``fulfill_checkout`` pattern: one function that credits a paid Checkout Session once.

The webhook, the success page and reconciliation all call it with the Checkout Session as a
plain dict; whoever comes first credits, the others find the ledger key ``fulfil:<session id>``
taken. Nothing here trusts the order of arrival: the credit is guarded by the UNIQUE ledger
key, the state by a conditional UPDATE (``app.checkout.states``), and on PostgreSQL the order
row is locked first so concurrent calls for one order queue and each sees the last commit.

The logic is written once, on a Core ``Connection`` with statements built once (the SQLite
webhook writer runs it thousands of times a second); :func:`fulfil_checkout` runs it in the
caller's async transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal

import structlog
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.checkout.models import Order, OrderStatus
from app.checkout.states import ORDERS, transition_sync
from app.ledger.models import LedgerEntry
from app.ledger.service import EntryRow, SqlConnection, post_entry_sync

__all__ = (
    "FulfilOutcome",
    "FulfilResult",
    "OrderRow",
    "fulfil_checkout",
    "fulfil_checkout_sync",
    "order_for_session_sync",
)

log = structlog.get_logger()

FulfilOutcome = Literal[
    "credited", "already_credited", "awaiting_payment", "needs_review", "not_paid", "unknown_order"
]

_COLUMNS = (
    ORDERS.c.id,
    ORDERS.c.user_id,
    ORDERS.c.asset,
    ORDERS.c.units,
    ORDERS.c.bonus,
    ORDERS.c.amount,
    ORDERS.c.currency,
    ORDERS.c.status,
    ORDERS.c.stripe_session_id,
    ORDERS.c.stripe_payment_intent_id,
    ORDERS.c.fulfilled_at,
    ORDERS.c.pack_name,
)


@dataclass(slots=True)
class OrderRow:
    """The columns money decisions need, read (and on PostgreSQL locked) in this transaction."""

    id: int
    user_id: int
    asset: str
    units: int
    bonus: int
    amount: int
    currency: str
    status: str
    stripe_session_id: str | None
    stripe_payment_intent_id: str | None
    fulfilled_at: datetime | None
    pack_name: str

    @property
    def total_units(self) -> int:
        return self.units + self.bonus


@lru_cache(maxsize=1)
def _queries() -> dict[str, Any]:
    locked = select(*_COLUMNS).with_for_update()  # FOR UPDATE on PostgreSQL, nothing on SQLite
    return {
        "by_session": locked.where(ORDERS.c.stripe_session_id == bindparam("key")),
        "by_id": locked.where(ORDERS.c.id == bindparam("key")),
        "by_payment_intent": locked.where(ORDERS.c.stripe_payment_intent_id == bindparam("key")),
        "claim_session": update(ORDERS)
        .where(ORDERS.c.id == bindparam("oid"), ORDERS.c.stripe_session_id.is_(None))
        .values(stripe_session_id=bindparam("sid")),
    }


def load_order_sync(conn: SqlConnection, by: str, key: object) -> OrderRow | None:
    """One order row, locked for this transaction; ``by`` is by_session, by_id or by_payment_intent."""
    row = conn.execute(_queries()[by], {"key": key}).first()
    return None if row is None else OrderRow(*row)


def order_for_session_sync(conn: SqlConnection, session_obj: Mapping[str, Any]) -> OrderRow | None:
    """The order behind a Checkout Session: by its id, else by ``metadata.order_id``."""
    session_id = session_obj.get("id")
    if isinstance(session_id, str) and session_id:
        order = load_order_sync(conn, "by_session", session_id)
        if order is not None:
            return order
    metadata = session_obj.get("metadata") or {}
    raw = metadata.get("order_id") if isinstance(metadata, Mapping) else None
    try:
        order_id = int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None
    if order_id is None:
        return None
    order = load_order_sync(conn, "by_id", order_id)
    if order is not None and order.stripe_session_id is None and isinstance(session_id, str) and session_id:
        # The session was created but the request that stores its id has not committed yet.
        conn.execute(_queries()["claim_session"], {"oid": order.id, "sid": session_id})
        order.stripe_session_id = session_id
    return order


def _payment_intent_id(session_obj: Mapping[str, Any]) -> str | None:
    value = session_obj.get("payment_intent")
    if isinstance(value, Mapping):  # expanded
        value = value.get("id")
    return value if isinstance(value, str) and value else None


@dataclass(slots=True)
class FulfilResult:
    """What fulfilment did. ``order`` is None only for ``unknown_order``.

    From :func:`fulfil_checkout` it is the caller's ``Order`` (fresh from this transaction);
    from :func:`fulfil_checkout_sync` an :class:`OrderRow`.
    """

    outcome: FulfilOutcome
    order: Order | OrderRow | None
    entry: LedgerEntry | EntryRow | None = None

    @property
    def credited(self) -> bool:
        return self.outcome == "credited"


def _settle(conn: SqlConnection, order: OrderRow, to: OrderStatus, **values: Any) -> None:
    """Move the order and keep ``order`` equal to the row (re-read only when the move was refused)."""
    if transition_sync(conn, order_id=order.id, to=to, **values) is not None:
        order.status = to.value
        if values.get("payment_intent_id"):
            order.stripe_payment_intent_id = values["payment_intent_id"]
        if values.get("fulfilled_at") and order.fulfilled_at is None:
            order.fulfilled_at = values["fulfilled_at"]
        return
    fresh = load_order_sync(conn, "by_id", order.id)
    if fresh is not None:
        order.status = fresh.status


def fulfil_checkout_sync(conn: SqlConnection, session_obj: Mapping[str, Any]) -> FulfilResult:
    """Synchronous core of :func:`fulfil_checkout` (also run by the SQLite webhook writer)."""
    session_id = str(session_obj.get("id") or "")
    order = order_for_session_sync(conn, session_obj)
    if order is None:
        log.warning("fulfil.unknown_order", session_id=session_id)
        return FulfilResult("unknown_order", None)
    if order.stripe_session_id != session_id:
        # metadata points at an order that belongs to another session: a human decides.
        _settle(conn, order, OrderStatus.NEEDS_REVIEW, reason=f"paid through another session {session_id}")
        log.warning("fulfil.session_mismatch", order_id=order.id, session_id=session_id)
        return FulfilResult("needs_review", order)

    status = session_obj.get("status")
    payment_status = session_obj.get("payment_status")
    pi = _payment_intent_id(session_obj)

    if payment_status != "paid":
        if status == "complete" and payment_status == "unpaid":
            _settle(conn, order, OrderStatus.AWAITING_PAYMENT, payment_intent_id=pi)
            if order.status == OrderStatus.AWAITING_PAYMENT:
                return FulfilResult("awaiting_payment", order)
        elif status == "expired":
            _settle(conn, order, OrderStatus.EXPIRED, reason="session expired")
        return FulfilResult("needs_review" if order.status == OrderStatus.NEEDS_REVIEW else "not_paid", order)

    amount_total = session_obj.get("amount_total")
    currency = str(session_obj.get("currency") or "")
    if amount_total != order.amount or currency.lower() != order.currency.lower():
        reason = f"Stripe charged {amount_total} {currency}, order says {order.amount} {order.currency}"
        _settle(conn, order, OrderStatus.NEEDS_REVIEW, reason=reason)
        log.warning(
            "fulfil.amount_mismatch",
            order_id=order.id,
            session_id=session_id,
            stripe_amount=amount_total,
            stripe_currency=currency,
            order_amount=order.amount,
            order_currency=order.currency,
        )
        return FulfilResult("needs_review", order)

    if order.status != OrderStatus.PAID:
        _settle(
            conn, order, OrderStatus.PAID, payment_intent_id=pi, fulfilled_at=datetime.now(UTC), reason=""
        )
        if order.status != OrderStatus.PAID:
            # needs_review stays for a human; nothing is credited.
            return FulfilResult("needs_review", order)
    entry = post_entry_sync(
        conn,
        user_id=order.user_id,
        asset=order.asset,
        units=order.total_units,
        kind="purchase",
        idempotency_key=f"fulfil:{session_id}",
        order_id=order.id,
        amount=order.amount,
        reason=f"{order.pack_name} ({order.units} + {order.bonus} bonus)",
    )
    if entry is None:
        return FulfilResult("already_credited", order)
    # Refunds and disputes that arrived before this credit waited for it (app.webhooks.processing).
    from app.webhooks.processing import replay_pending_sync

    replay_pending_sync(conn, order)
    return FulfilResult("credited", order, entry)


async def fulfil_checkout(db: AsyncSession, session: Mapping[str, Any]) -> FulfilResult:
    """Credit a paid Checkout Session exactly once (in the caller's transaction; flushes, never commits).

    ``session`` is the Checkout Session as a dict (an event's ``data.object`` or a retrieved
    session's ``to_dict()``). Amount and currency must equal the order's snapshot, else the
    order goes to ``needs_review`` and nothing is credited. ``result.order`` is the ``Order``
    as this transaction now sees it.
    """
    conn = await db.connection()
    result = await conn.run_sync(fulfil_checkout_sync, session)
    if result.order is not None:
        result.order = await db.get(Order, result.order.id, populate_existing=True)
    if isinstance(result.entry, EntryRow):
        result.entry = result.entry.to_model()
    return result
