"""The order state machine: one conditional UPDATE per move, so a state never goes backwards.

::

    pending -> open -> awaiting_payment -> paid
    pending/open/awaiting_payment -> failed | expired | canceled
    any non-final state -> needs_review

``paid``, ``failed``, ``expired``, ``canceled`` and ``needs_review`` are final, with two
exceptions. A person ends ``needs_review`` from the admin console (:func:`leave_review`: to
``paid`` when crediting anyway, to ``canceled`` when refunding or closing). And one
exception taken from Stripe's semantics: Stripe is the authority on money. When Stripe
says a Checkout Session completed and is paid, the order becomes ``paid`` (and is credited)
even if we had marked it ``canceled``/``expired``/``failed`` locally — e.g. the buyer pressed
"cancel" in one tab and paid in another, or our expiry sweep raced the payment. Stripe never
reports a paid session as expired or failed afterwards, and the reverse moves are refused, so
a paid order stays paid whatever arrives late. ``needs_review`` is left to a human.

Money decisions read an order as an :class:`OrderRow`, locked for the transaction on
PostgreSQL (``FOR UPDATE``; SQLite's single writer already serialises), and every move
returns the row as the database now has it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any, Literal, cast

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, String, Table, bindparam, case, func, literal, select, update

from app.db.sql import SqlConnection
from app.money.fields import BIGINT_MAX, optional_id
from app.money.models import Order, OrderStatus

__all__ = (
    "ALLOWED_FROM",
    "ORDERS",
    "REVIEW_ENDS",
    "OrderRow",
    "leave_review",
    "load_order",
    "order_for_session",
    "record_charge",
    "transition",
)

S = OrderStatus

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
    ORDERS.c.credit_expires_days,
    ORDERS.c.amount_paid,
)


@dataclass(slots=True)
class OrderRow:
    """The columns money decisions need, as this transaction sees them."""

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
    credit_expires_days: int | None
    amount_paid: int | None
    """What the buyer was charged after discounts and with tax; NULL: not recorded (``amount``)."""

    @property
    def total_units(self) -> int:
        return self.units + self.bonus

    @property
    def paid(self) -> int:
        """What refunds are measured against: the charge, or the snapshot for older orders."""
        return self.amount if self.amount_paid is None else self.amount_paid


OrderKey = Literal["by_session", "by_id", "by_payment_intent"]


@lru_cache(maxsize=1)
def _reads() -> dict[str, Any]:
    """Built once: building a statement costs more than running it on SQLite."""
    locked = select(*_COLUMNS).with_for_update()  # FOR UPDATE on PostgreSQL, nothing on SQLite
    return {
        "by_session": locked.where(ORDERS.c.stripe_session_id == bindparam("key")),
        "by_id": locked.where(ORDERS.c.id == bindparam("key")),
        "by_payment_intent": locked.where(ORDERS.c.stripe_payment_intent_id == bindparam("key")),
        "record_charge": update(ORDERS)
        .where(ORDERS.c.id == bindparam("oid"), ORDERS.c.amount_paid.is_(None))
        .values(
            amount_discount=bindparam("discount"),
            amount_tax=bindparam("tax"),
            amount_paid=bindparam("paid"),
            updated_at=bindparam("now", type_=DateTimeUTC()),
        ),
        "claim_session": update(ORDERS)
        .where(ORDERS.c.id == bindparam("oid"), ORDERS.c.stripe_session_id.is_(None))
        .values(stripe_session_id=bindparam("sid"), updated_at=bindparam("now", type_=DateTimeUTC())),
    }


def _charge_values() -> dict[str, Any]:
    """``record_charge``'s effect inside another UPDATE: the first charge recorded stays."""
    unrecorded = ORDERS.c.amount_paid.is_(None)
    return {
        "amount_discount": case((unrecorded, bindparam("discount")), else_=ORDERS.c.amount_discount),
        "amount_tax": case((unrecorded, bindparam("tax")), else_=ORDERS.c.amount_tax),
        "amount_paid": func.coalesce(ORDERS.c.amount_paid, bindparam("paid", type_=BigInteger)),
    }


@cache
def _move(to: OrderStatus, by_session: bool, with_charge: bool = False) -> Any:
    """One UPDATE per target state, built once (the allowed predecessors are part of it).

    ``with_charge``: the move also records the charge (:func:`record_charge`), so a paid order
    is one row write instead of two.
    """
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
            **(_charge_values() if with_charge else {}),
        )
        .returning(*_COLUMNS)
    )


def load_order(conn: SqlConnection, by: OrderKey, key: object) -> OrderRow | None:
    """One order row, locked for this transaction."""
    row = conn.execute(_reads()[by], {"key": key}).first()
    return None if row is None else OrderRow(*row)


def order_for_session(conn: SqlConnection, session_obj: Mapping[str, Any]) -> OrderRow | None:
    """The order behind a Checkout Session: by its id, else by ``metadata.order_id``."""
    session_id = optional_id(session_obj.get("id"))
    if session_id is not None:
        order = load_order(conn, "by_session", session_id)
        if order is not None:
            return order
    metadata = session_obj.get("metadata") or {}
    raw = metadata.get("order_id") if isinstance(metadata, Mapping) else None
    # We write it as a decimal string; anything else (or beyond a BIGINT) names no order of ours.
    if not isinstance(raw, str) or not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        return None
    order_id = int(raw)
    if order_id > BIGINT_MAX:
        return None
    order = load_order(conn, "by_id", order_id)
    if order is not None and order.stripe_session_id is None and session_id is not None:
        # The session was created but the request that stores its id has not committed yet.
        conn.execute(
            _reads()["claim_session"], {"oid": order.id, "sid": session_id, "now": datetime.now(UTC)}
        )
        order.stripe_session_id = session_id
    return order


def record_charge(conn: SqlConnection, order: OrderRow, *, discount: int, tax: int, paid: int) -> None:
    """Keep what the paid session charged, once: the first fulfilment's figures stay."""
    conn.execute(
        _reads()["record_charge"],
        {"oid": order.id, "discount": discount, "tax": tax, "paid": paid, "now": datetime.now(UTC)},
    )
    if order.amount_paid is None:
        order.amount_paid = paid


def transition(
    conn: SqlConnection,
    *,
    order_id: int | None = None,
    session_id: str | None = None,
    to: OrderStatus,
    reason: str | None = None,
    payment_intent_id: str | None = None,
    fulfilled_at: datetime | None = None,
    charge: tuple[int, int, int] | None = None,
) -> OrderRow | None:
    """Move one order (by id or Checkout Session id) to ``to`` if its state allows it.

    ``charge`` (discount, tax, paid) is recorded with the move as :func:`record_charge` would
    (not at all when the move is refused). Returns the order as it now is, or ``None`` when the
    move was refused (or no such order).
    """
    if (order_id is None) == (session_id is None):
        raise ValueError("give exactly one of order_id or session_id")
    if not ALLOWED_FROM[to]:
        return None
    params: dict[str, Any] = {
        "oid": order_id,
        "sid": session_id,
        "now": datetime.now(UTC),
        "reason": reason[:500] if reason is not None else None,
        "pi": payment_intent_id,
        "fulfilled_at": fulfilled_at,
    }
    if charge is not None:
        params.update(discount=charge[0], tax=charge[1], paid=charge[2])
    row = conn.execute(_move(to, session_id is not None, charge is not None), params).first()
    return None if row is None else OrderRow(*row)


REVIEW_ENDS: frozenset[OrderStatus] = frozenset({S.PAID, S.CANCELED})
"""Where an admin may move a ``needs_review`` order (and only an admin: nothing automatic does)."""


@lru_cache(maxsize=1)
def _leave_review() -> Any:
    return (
        update(ORDERS)
        .where(ORDERS.c.id == bindparam("oid"), ORDERS.c.status == S.NEEDS_REVIEW.value)
        .values(
            status=bindparam("to"),
            updated_at=bindparam("now"),
            status_reason=bindparam("reason", type_=String),
            stripe_payment_intent_id=func.coalesce(
                bindparam("pi", type_=String), ORDERS.c.stripe_payment_intent_id
            ),
            fulfilled_at=func.coalesce(ORDERS.c.fulfilled_at, bindparam("fulfilled_at", type_=DateTimeUTC())),
        )
        .returning(*_COLUMNS)
    )


def leave_review(
    conn: SqlConnection,
    order_id: int,
    to: OrderStatus,
    reason: str,
    *,
    payment_intent_id: str | None = None,
    fulfilled_at: datetime | None = None,
) -> OrderRow | None:
    """Move a ``needs_review`` order to ``to`` (one of :data:`REVIEW_ENDS`); ``None`` if it is not
    (or no longer: another admin got there first) in review."""
    if to not in REVIEW_ENDS:
        raise ValueError(f"an order in review cannot move to {to}")
    row = conn.execute(
        _leave_review(),
        {
            "oid": order_id,
            "to": to.value,
            "now": datetime.now(UTC),
            "reason": reason[:500],
            "pi": payment_intent_id,
            "fulfilled_at": fulfilled_at,
        },
    ).first()
    return None if row is None else OrderRow(*row)
