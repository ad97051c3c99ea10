"""Apply a Stripe event exactly once: store it and its effect in the same transaction.

The ``stripe_event`` primary key makes a redelivered event a no-op; every ledger effect also
has its own idempotency key, so two different events describing the same fact (e.g.
``charge.refunded`` and ``refund.created`` for one refund) count once as well.

Order of arrival does not matter:

* the order's state only moves forward (``app.checkout.states``);
* a refund or dispute whose order is not credited yet (its completion event has not come, so
  we do not know the payment intent) is stored with ``pending_payment_intent_id`` and answered
  2xx; when the order is credited, :func:`replay_pending_sync` applies it in that same
  transaction (on PostgreSQL both sides first take an advisory lock on the payment intent,
  so a refund racing the credit is never missed by both). We chose this over answering 5xx
  so that a refund never depends on Stripe's retry schedule, and an event for a payment that
  is not ours never keeps failing;
* dispute close/reinstatement events post the hold themselves if ``charge.dispute.created``
  has not been seen, so every combination releases or removes the units exactly once.

Refunds take back units in proportion to the refunded money, computed on cumulative totals
(``floor(total_units * refunded / amount)`` minus what was taken before), so partial refunds
adding up to the full amount take back exactly ``units + bonus``. The refunded total is the
larger of two lower bounds Stripe gives us — the sum of the refunds we know by id and the
charge's cumulative ``amount_refunded`` — so ``charge.refunded`` (which may not list refund
ids) and ``refund.*`` describe one refund once, whichever comes first.

Like the ledger, the logic is written once against a synchronous Core ``Connection`` with
statements built once; the async API runs it with ``AsyncConnection.run_sync`` in the
caller's transaction and the SQLite writer calls it directly on its own thread.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

import msgspec
import structlog
from sqlalchemy import String, Table, bindparam, case, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.checkout.fulfilment import (
    FulfilResult,
    OrderRow,
    fulfil_checkout_sync,
    load_order_sync,
    order_for_session_sync,
)
from app.checkout.models import OrderStatus
from app.checkout.states import transition_sync
from app.ledger.models import LedgerEntry
from app.ledger.service import SqlConnection, dialect_insert, post_entry_sync
from app.webhooks.models import StripeEvent

__all__ = (
    "HANDLERS",
    "ProcessOutcome",
    "event_fields",
    "process_event",
    "process_event_sync",
    "replay_pending_sync",
    "serialise_payment_intent_sync",
)

log = structlog.get_logger()

Obj = Mapping[str, Any]
EVENTS = cast(Table, StripeEvent.__table__)


@dataclass(frozen=True, slots=True)
class ProcessOutcome:
    """What processing an event did. ``outcome`` is what the ``stripe_event`` row records."""

    event_id: str
    type: str
    outcome: str
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class _Effect:
    outcome: str
    pending_payment_intent_id: str | None = None


class _NotOurs(Exception):
    """The event cannot concern a payment of ours (e.g. no payment intent): stored, acknowledged.

    Its own class, so a KeyError or IndexError raised by an effect is not mistaken for it and
    acknowledged (which would lose the effect); those roll back and answer 5xx.
    """


class _Pending(Exception):
    """The event's order is not credited yet: keep the event until it is."""

    def __init__(self, payment_intent_id: str) -> None:
        super().__init__(payment_intent_id)
        self.payment_intent_id = payment_intent_id


Handler = Callable[[SqlConnection, Obj], _Effect]

PAYMENT_INTENT_LOCK = 0x5354_5249
"""First key of the PostgreSQL advisory lock on a payment intent (the second is its hash)."""


@lru_cache(maxsize=4)
def _statements(dialect: str = "") -> dict[str, Any]:
    """Built once (per dialect for ON CONFLICT): building costs more than running on SQLite."""
    by_id = LedgerEntry.kind == "refund"
    statements: dict[str, Any] = {
        "refund_totals": select(
            func.coalesce(func.sum(LedgerEntry.units), 0),
            func.coalesce(func.sum(case((by_id, LedgerEntry.amount), else_=0)), 0),
            func.coalesce(func.max(case((~by_id, LedgerEntry.amount), else_=0)), 0),
        ).where(
            LedgerEntry.order_id == bindparam("order_id"),
            LedgerEntry.kind.in_([literal("refund"), literal("refund_total")]),
        ),
        "ended": select(func.count())
        .select_from(LedgerEntry)
        .where(LedgerEntry.idempotency_key.in_([bindparam("release"), bindparam("loss")])),
        "outcome": update(EVENTS)
        .where(EVENTS.c.id == bindparam("eid"))
        .values(outcome=bindparam("outcome"), pending_payment_intent_id=bindparam("pending")),
        "waiting": select(EVENTS.c.id, EVENTS.c.type, EVENTS.c.payload)
        .where(EVENTS.c.pending_payment_intent_id == bindparam("pi"))
        .order_by(EVENTS.c.created, EVENTS.c.received_at, EVENTS.c.id),
        # PostgreSQL only (see serialise_payment_intent_sync); the first key names this use.
        "lock_payment_intent": select(
            func.pg_advisory_xact_lock(
                literal(PAYMENT_INTENT_LOCK), func.hashtext(bindparam("pi", type_=String))
            )
        ),
    }
    if dialect:
        statements["store"] = (
            dialect_insert(dialect, EVENTS)
            .values(
                id=bindparam("id"),
                type=bindparam("type"),
                created=bindparam("created"),
                source=bindparam("source"),
                outcome="",
                payload=bindparam("payload"),
            )
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(EVENTS.c.id)
        )
    return statements


def _id(value: Any) -> str | None:
    """An id from a field that may be a string or an expanded object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


# --- checkout sessions ---------------------------------------------------------------------


def _fulfil_outcome(result: FulfilResult) -> _Effect:
    order = f" order {result.order.id}" if result.order is not None else ""
    return _Effect(f"{result.outcome}{order}")


def _session_completed(conn: SqlConnection, obj: Obj) -> _Effect:
    return _fulfil_outcome(fulfil_checkout_sync(conn, obj))


def _session_failed(conn: SqlConnection, obj: Obj) -> _Effect:
    order = order_for_session_sync(conn, obj)
    if order is None:
        return _Effect("unknown_order")
    changed = transition_sync(conn, order_id=order.id, to=OrderStatus.FAILED, reason="payment failed")
    return _Effect(f"{'failed' if changed else 'unchanged ' + order.status} order {order.id}")


def _session_expired(conn: SqlConnection, obj: Obj) -> _Effect:
    order = order_for_session_sync(conn, obj)
    if order is None:
        return _Effect("unknown_order")
    changed = transition_sync(conn, order_id=order.id, to=OrderStatus.EXPIRED, reason="session expired")
    return _Effect(f"{'expired' if changed else 'unchanged ' + order.status} order {order.id}")


# --- refunds and disputes --------------------------------------------------------------------


def serialise_payment_intent_sync(conn: SqlConnection, payment_intent_id: str) -> bool:
    """PostgreSQL: wait for (then hold to the end of this transaction) the payment intent's lock.

    A refund or dispute that finds its order uncredited stores itself as pending; the crediting
    transaction then replays what is pending. Run concurrently, each would miss the other's
    uncommitted row and the event would wait forever. Both take this lock first, so one sees
    the other's commit. SQLite has one writer at a time already: False, nothing to do.
    """
    if conn.dialect.name != "postgresql":
        return False
    conn.execute(_statements()["lock_payment_intent"], {"pi": payment_intent_id})
    return True


def _credited_order(conn: SqlConnection, payment_intent_id: str | None) -> OrderRow:
    """The credited order paid by this payment intent, locked; raises _Pending when not yet."""
    if payment_intent_id is None:
        raise _NotOurs("no payment intent")
    order = load_order_sync(conn, "by_payment_intent", payment_intent_id)
    if order is not None and order.fulfilled_at is not None:
        return order
    if serialise_payment_intent_sync(conn, payment_intent_id):
        # A crediting transaction that committed while we waited has not seen us: look again.
        order = load_order_sync(conn, "by_payment_intent", payment_intent_id)
        if order is not None and order.fulfilled_at is not None:
            return order
    raise _Pending(payment_intent_id)


def _units_for(order: OrderRow, amount: int) -> int:
    """Units bought with ``amount`` of the order's money, rounded down, never more than all."""
    if order.amount <= 0:
        return order.total_units
    return order.total_units * min(max(amount, 0), order.amount) // order.amount


def _take_back(
    conn: SqlConnection, order: OrderRow, *, refund_id: str | None, amount: int, cumulative_key: str = ""
) -> bool:
    """Record one refund (by id) or the charge's cumulative refunded total; True if it was new."""
    totals = conn.execute(_statements()["refund_totals"], {"order_id": order.id}).one()
    taken, by_id, total = -int(totals[0]), int(totals[1]), int(totals[2])
    if refund_id is not None:
        by_id += amount
    else:
        total = max(total, amount)
    target = _units_for(order, max(by_id, total))
    entry = post_entry_sync(
        conn,
        user_id=order.user_id,
        asset=order.asset,
        units=-max(target - taken, 0),
        kind="refund" if refund_id is not None else "refund_total",
        idempotency_key=f"refund:{refund_id}" if refund_id is not None else cumulative_key,
        order_id=order.id,
        amount=amount,
        reason=f"refund of {amount} {order.currency}" if refund_id else f"refunded in total {amount}",
    )
    return entry is not None


def _charge_refunded(conn: SqlConnection, charge: Obj) -> _Effect:
    order = _credited_order(conn, _id(charge.get("payment_intent")))
    applied = 0
    refunds = charge.get("refunds")
    listed = refunds.get("data") if isinstance(refunds, Mapping) else None
    for refund in listed or ():
        if isinstance(refund, Mapping) and refund.get("status") == "succeeded" and _id(refund.get("id")):
            applied += _take_back(conn, order, refund_id=_id(refund["id"]), amount=int(refund["amount"]))
    cumulative = int(charge.get("amount_refunded") or 0)
    key = f"refund:{_id(charge.get('id'))}:total:{cumulative}"
    applied += _take_back(conn, order, refund_id=None, amount=cumulative, cumulative_key=key)
    return _Effect(f"refund {'applied' if applied else 'already applied'} order {order.id}")


def _refund_event(conn: SqlConnection, refund: Obj) -> _Effect:
    if refund.get("status") != "succeeded":
        return _Effect(f"ignored refund status {refund.get('status')}")
    order = _credited_order(conn, _id(refund.get("payment_intent")))
    new = _take_back(conn, order, refund_id=_id(refund.get("id")), amount=int(refund["amount"]))
    return _Effect(f"refund {'applied' if new else 'already applied'} order {order.id}")


def _dispute_units(order: OrderRow, dispute: Obj) -> int:
    return _units_for(order, int(dispute.get("amount") or 0))


def _hold(conn: SqlConnection, order: OrderRow, dispute: Obj) -> bool:
    units = _dispute_units(order, dispute)
    entry = post_entry_sync(
        conn,
        user_id=order.user_id,
        asset=order.asset,
        units=-units,
        held_units=units,
        kind="dispute_hold",
        idempotency_key=f"dispute_hold:{dispute['id']}",
        order_id=order.id,
        amount=int(dispute.get("amount") or 0),
        reason=f"disputed ({dispute.get('reason') or 'no reason'})",
    )
    return entry is not None


def _release(conn: SqlConnection, order: OrderRow, dispute: Obj) -> bool:
    units = _dispute_units(order, dispute)
    entry = post_entry_sync(
        conn,
        user_id=order.user_id,
        asset=order.asset,
        units=units,
        held_units=-units,
        kind="dispute_release",
        idempotency_key=f"dispute_release:{dispute['id']}",
        order_id=order.id,
        amount=int(dispute.get("amount") or 0),
        reason="dispute won",
    )
    return entry is not None


def _lose(conn: SqlConnection, order: OrderRow, dispute: Obj) -> bool:
    units = _dispute_units(order, dispute)
    entry = post_entry_sync(
        conn,
        user_id=order.user_id,
        asset=order.asset,
        units=0,
        held_units=-units,
        kind="dispute_loss",
        idempotency_key=f"dispute_loss:{dispute['id']}",
        order_id=order.id,
        amount=int(dispute.get("amount") or 0),
        reason="dispute lost",
    )
    return entry is not None


def _lost_or_released(conn: SqlConnection, dispute_id: str) -> bool:
    """True if this dispute already ended (won or lost): its held units are gone."""
    keys = {"release": f"dispute_release:{dispute_id}", "loss": f"dispute_loss:{dispute_id}"}
    return bool(conn.execute(_statements()["ended"], keys).first()[0])


def _dispute_created(conn: SqlConnection, dispute: Obj) -> _Effect:
    order = _credited_order(conn, _id(dispute.get("payment_intent")))
    new = _hold(conn, order, dispute)
    return _Effect(f"dispute {'held' if new else 'already held'} order {order.id}")


def _dispute_end(conn: SqlConnection, dispute: Obj, won: bool) -> _Effect:
    order = _credited_order(conn, _id(dispute.get("payment_intent")))
    dispute_id = str(dispute["id"])
    # A close that comes before its ``created`` event: hold first, so hold/end always pair up
    # (and a late ``created`` then finds the hold key taken).
    _hold(conn, order, dispute)
    if _lost_or_released(conn, dispute_id):
        return _Effect(f"dispute already closed order {order.id}")
    if won:
        _release(conn, order, dispute)
        return _Effect(f"dispute released order {order.id}")
    _lose(conn, order, dispute)
    return _Effect(f"dispute lost order {order.id}")


def _dispute_closed(conn: SqlConnection, dispute: Obj) -> _Effect:
    status = dispute.get("status")
    if status in ("won", "warning_closed"):
        return _dispute_end(conn, dispute, won=True)
    if status == "lost":
        return _dispute_end(conn, dispute, won=False)
    return _Effect(f"ignored dispute status {status}")


def _dispute_reinstated(conn: SqlConnection, dispute: Obj) -> _Effect:
    return _dispute_end(conn, dispute, won=True)


HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": _session_completed,
    "checkout.session.async_payment_succeeded": _session_completed,
    "checkout.session.async_payment_failed": _session_failed,
    "checkout.session.expired": _session_expired,
    "charge.refunded": _charge_refunded,
    "refund.created": _refund_event,
    "refund.updated": _refund_event,
    "charge.refund.updated": _refund_event,
    "charge.dispute.created": _dispute_created,
    "charge.dispute.closed": _dispute_closed,
    "charge.dispute.funds_reinstated": _dispute_reinstated,
}
"""Event type -> effect. Anything else is stored with outcome ``ignored``."""


def _apply(conn: SqlConnection, event_type: str, obj: Obj) -> _Effect:
    handler = HANDLERS.get(event_type)
    if handler is None:
        return _Effect("ignored")
    try:
        return handler(conn, obj)
    except _Pending as pending:
        return _Effect("pending until the order is credited", pending.payment_intent_id)
    except _NotOurs as missing:
        return _Effect(f"ignored: {missing}")


def event_fields(event: Obj) -> tuple[str, str, int, Obj]:
    """id, type, created and data.object, or ValueError for something that is not a Stripe event."""
    event_id, event_type, created = event.get("id"), event.get("type"), event.get("created")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(event_id, str) or not event_id or len(event_id) > 255:
        raise ValueError("event id missing")
    if not isinstance(event_type, str) or not event_type or len(event_type) > 100:
        raise ValueError("event type missing")
    if not isinstance(created, int) or isinstance(created, bool):
        raise ValueError("event created missing")
    if not isinstance(obj, Mapping):
        raise ValueError("event data.object missing")
    return event_id, event_type, created, obj


def process_event_sync(
    conn: SqlConnection, event: Obj, *, source: str = "webhook", payload: str | None = None
) -> ProcessOutcome:
    """Synchronous core of :func:`process_event`."""
    event_id, event_type, created, obj = event_fields(event)
    if payload is None:
        payload = json.dumps(event, separators=(",", ":"), default=str)
    statements = _statements(conn.dialect.name)
    stored = conn.execute(
        statements["store"],
        {"id": event_id, "type": event_type, "created": created, "source": source[:16], "payload": payload},
    ).first()
    if stored is None:
        return ProcessOutcome(event_id, event_type, "duplicate", duplicate=True)
    effect = _apply(conn, event_type, obj)
    conn.execute(
        statements["outcome"],
        {"eid": event_id, "outcome": effect.outcome[:200], "pending": effect.pending_payment_intent_id},
    )
    return ProcessOutcome(event_id, event_type, effect.outcome)


def replay_pending_sync(conn: SqlConnection, order: OrderRow) -> None:
    """Apply the refunds and disputes that waited for this order's credit, oldest first."""
    pi = order.stripe_payment_intent_id
    if pi is None:
        return
    serialise_payment_intent_sync(conn, pi)
    statements = _statements(conn.dialect.name)
    waiting = conn.execute(statements["waiting"], {"pi": pi}).all()
    for event_id, event_type, payload in waiting:
        event = msgspec.json.decode(payload)
        effect = _apply(conn, event_type, event["data"]["object"])
        conn.execute(
            statements["outcome"],
            {"eid": event_id, "outcome": f"after credit: {effect.outcome}"[:200], "pending": None},
        )
        log.info("webhook.pending_applied", event_id=event_id, type=event_type, outcome=effect.outcome)


async def process_event(
    db: AsyncSession, event: Mapping[str, Any], *, source: str = "webhook", payload: str | None = None
) -> ProcessOutcome:
    """Store ``event`` and apply its effect in the caller's transaction (the caller commits).

    A redelivered event (same id) is a no-op with outcome ``duplicate``. An effect that raises
    propagates: roll back, so the event is not stored and Stripe's retry runs it again.
    ``payload`` is the raw JSON body when the caller has it (stored as received).
    """
    conn = await db.connection()
    return await conn.run_sync(lambda c: process_event_sync(c, event, source=source, payload=payload))
