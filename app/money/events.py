"""Apply a Stripe event exactly once: store it and its effect in the same transaction.

The ``stripe_event`` primary key makes a redelivered event a no-op; every ledger effect also
has its own idempotency key, so two different events describing the same fact (e.g.
``charge.refunded`` and ``refund.created`` for one refund) count once as well. Order of
arrival does not matter: an order's state only moves forward (``app.money.orders``), and a
refund or dispute that comes before its order's credit waits for it (``app.money.reversals``).

An event whose effect fails on its data is stored as ``failed: <error>`` and acknowledged
(``app.money.fields``); an event of the other Stripe mode than our key's (``livemode``) is
stored as ignored and counted, never applied: a live payment must not credit a test shop,
nor a test event a live one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

import structlog

from app.db.sql import SqlConnection
from app.money.event_store import set_outcome, store_event, stored_event
from app.money.fields import BIGINT_MAX
from app.money.fulfilment import FulfilResult, fulfil_checkout
from app.money.models import OrderStatus
from app.money.orders import order_for_session, transition
from app.money.reversals import REVERSALS, Effect, Handler, apply_effect

__all__ = ("HANDLERS", "ProcessOutcome", "event_fields", "process_event", "replay_event")

log = structlog.get_logger()

Obj = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ProcessOutcome:
    """What processing an event did. ``outcome`` is what the ``stripe_event`` row records."""

    event_id: str
    type: str
    outcome: str
    duplicate: bool = False
    failed: bool = False
    """Its effect failed on its data: stored as failed for an operator (see ``storefront events``)."""
    other_mode: bool = False
    """Of the other Stripe mode than our key's: stored as ignored, never applied.

    The webhook endpoint counts both (Prometheus), in the server's process: the writer that
    ran the effect may be another process."""


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


def _is_name(value: object, limit: int) -> TypeGuard[str]:
    """A non-empty printable ASCII string of at most ``limit`` characters, as Stripe's ids are."""
    return isinstance(value, str) and 0 < len(value) <= limit and value.isascii() and value.isprintable()


def event_fields(event: Obj) -> tuple[str, str, int, Obj]:
    """id, type, created and data.object, or ValueError for something that is not a Stripe event.

    Checked so the envelope's values fit their columns (a BIGINT, VARCHARs without NUL).
    """
    event_id, event_type, created = event.get("id"), event.get("type"), event.get("created")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not _is_name(event_id, 255):
        raise ValueError("event id missing")
    if not _is_name(event_type, 100):
        raise ValueError("event type missing")
    if not isinstance(created, int) or isinstance(created, bool) or not 0 <= created <= BIGINT_MAX:
        raise ValueError("event created missing")
    if not isinstance(obj, Mapping):
        raise ValueError("event data.object missing")
    return event_id, event_type, created, obj


def process_event(
    conn: SqlConnection,
    event: Obj,
    *,
    source: str = "webhook",
    payload: str | None = None,
    livemode: bool = False,
) -> ProcessOutcome:
    """Store ``event`` and apply its effect in the caller's transaction (the caller commits).

    A redelivered event (same id) is a no-op with outcome ``duplicate``. An effect that fails
    on the event's data is stored as failed; any other error propagates: roll back, so the
    event is not stored and Stripe's retry runs it again. ``payload`` is the raw JSON body
    when the caller has it (stored as received). ``livemode`` is our Stripe key's mode.
    """
    event_id, event_type, created, obj = event_fields(event)
    if payload is None:
        payload = json.dumps(event, separators=(",", ":"), default=str)
    if not store_event(
        conn, event_id=event_id, event_type=event_type, created=created, source=source, payload=payload
    ):
        return ProcessOutcome(event_id, event_type, "duplicate", duplicate=True)
    return _apply(conn, event, event_id, event_type, obj, livemode)


def _apply(
    conn: SqlConnection, event: Obj, event_id: str, event_type: str, obj: Obj, livemode: bool
) -> ProcessOutcome:
    """Apply a stored event's effect (unless it is of the other mode) and record its outcome."""
    # Stripe always says; an event without the field (made by hand, e.g. in tests) is taken as ours.
    other_mode = event.get("livemode", livemode) is not livemode
    if other_mode:
        log.warning("stripe_event.other_mode", event_id=event_id, type=event_type, ours=livemode)
        effect = Effect(f"ignored: livemode is not {str(livemode).lower()} (our key's mode)")
    else:
        effect = apply_effect(conn, HANDLERS.get(event_type), obj, event_id=event_id, event_type=event_type)
    set_outcome(conn, event_id, effect.outcome, effect.pending_payment_intent_id)
    return ProcessOutcome(event_id, event_type, effect.outcome, failed=effect.failed, other_mode=other_mode)


def replay_event(conn: SqlConnection, event_id: str, *, livemode: bool = False) -> ProcessOutcome | None:
    """Run a stored event through the same effect again (an operator's replay of a failed one).

    Idempotent like every effect (the ledger's keys); None when no such event is stored.
    """
    stored = stored_event(conn, event_id)
    if stored is None:
        return None
    event = json.loads(stored[1])
    _, event_type, _, obj = event_fields(event)
    return _apply(conn, event, event_id, event_type, obj, livemode)
