"""Apply a Stripe event exactly once: store it and its effect in the same transaction.

The ``stripe_event`` primary key makes a redelivered event a no-op; every ledger effect also
has its own idempotency key, so two different events describing the same fact (e.g.
``charge.refunded`` and ``refund.created`` for one refund) count once as well. Order of
arrival does not matter: an order's state only moves forward (``app.money.orders``), and a
refund or dispute that comes before its order's credit waits for it (``app.money.reversals``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.db.sql import SqlConnection
from app.money.event_store import set_outcome, store_event
from app.money.fulfilment import FulfilResult, fulfil_checkout
from app.money.models import OrderStatus
from app.money.orders import order_for_session, transition
from app.money.reversals import REVERSALS, Effect, Handler, apply_effect

__all__ = ("HANDLERS", "ProcessOutcome", "event_fields", "process_event")

Obj = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ProcessOutcome:
    """What processing an event did. ``outcome`` is what the ``stripe_event`` row records."""

    event_id: str
    type: str
    outcome: str
    duplicate: bool = False


def _fulfil_outcome(result: FulfilResult) -> Effect:
    order = f" order {result.order.id}" if result.order is not None else ""
    return Effect(f"{result.outcome}{order}")


def _session_completed(conn: SqlConnection, obj: Obj) -> Effect:
    return _fulfil_outcome(fulfil_checkout(conn, obj))


def _session_ended(to: OrderStatus, reason: str) -> Handler:
    """An effect that moves the session's order to ``to`` (failed or expired) if it still may."""

    def effect(conn: SqlConnection, obj: Obj) -> Effect:
        order = order_for_session(conn, obj)
        if order is None:
            return Effect("unknown_order")
        moved = transition(conn, order_id=order.id, to=to, reason=reason)
        return Effect(f"{to.value if moved else 'unchanged ' + order.status} order {order.id}")

    return effect


HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": _session_completed,
    "checkout.session.async_payment_succeeded": _session_completed,
    "checkout.session.async_payment_failed": _session_ended(OrderStatus.FAILED, "payment failed"),
    "checkout.session.expired": _session_ended(OrderStatus.EXPIRED, "session expired"),
    **REVERSALS,
}
"""Event type -> effect. Anything else is stored with outcome ``ignored``."""


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


def process_event(
    conn: SqlConnection, event: Obj, *, source: str = "webhook", payload: str | None = None
) -> ProcessOutcome:
    """Store ``event`` and apply its effect in the caller's transaction (the caller commits).

    A redelivered event (same id) is a no-op with outcome ``duplicate``. An effect that raises
    propagates: roll back, so the event is not stored and Stripe's retry runs it again.
    ``payload`` is the raw JSON body when the caller has it (stored as received).
    """
    event_id, event_type, created, obj = event_fields(event)
    if payload is None:
        payload = json.dumps(event, separators=(",", ":"), default=str)
    if not store_event(
        conn, event_id=event_id, event_type=event_type, created=created, source=source, payload=payload
    ):
        return ProcessOutcome(event_id, event_type, "duplicate", duplicate=True)
    effect = apply_effect(conn, HANDLERS.get(event_type), obj)
    set_outcome(conn, event_id, effect.outcome, effect.pending_payment_intent_id)
    return ProcessOutcome(event_id, event_type, effect.outcome)
