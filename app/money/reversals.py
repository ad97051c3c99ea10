"""What takes units back: refunds and disputes, and the replay of those that came early.

Refunds take back units in proportion to the refunded money, computed on cumulative totals
(``floor(total_units * refunded / paid)`` minus what was taken before), so partial refunds
adding up to the full charge take back exactly ``units + bonus``. ``paid`` is what the buyer
was actually charged (after a promotion code, with any tax: Stripe refunds out of that
charge), so refunding half of a discounted order takes back half its units. Integer
arithmetic, rounded down: a refund never takes back a unit it did not pay for, and the
last refund (reaching the whole charge) takes back whatever rounding left. The refunded total is the
larger of two lower bounds Stripe gives us — the sum of the refunds we know by id and the
charge's cumulative ``amount_refunded`` — so ``charge.refunded`` (which may not list refund
ids) and ``refund.*`` describe one refund once, whichever comes first.

Disputes hold the disputed units at ``charge.dispute.created``, then release them (won) or
remove them (lost). A close or reinstatement that comes before its ``created`` event posts
the hold itself first, so every combination releases or removes the units exactly once.

A refund or dispute whose order is not credited yet (its completion has not come, so we do
not know the payment intent) raises :class:`Pending`: the event is stored as waiting and
answered 2xx, and when the order is credited :func:`replay_pending` applies it in that same
transaction. On PostgreSQL both sides first take an advisory lock on the payment intent, so a
refund racing the credit is never missed by both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import msgspec
import structlog
from sqlalchemy import String, bindparam, case, func, literal, select

from app.catalogue.money import major_units
from app.db.sql import SqlConnection
from app.mail.outbox import enqueue
from app.money.credits import give_back, take_back
from app.money.event_store import FAILED_PREFIX, set_outcome, waiting_for
from app.money.fields import (
    AMOUNT_MAX,
    BadEventData,
    int_field,
    list_field,
    optional_id,
    required_id,
    text_field,
)
from app.money.ledger import ENTRIES, post_entry
from app.money.orders import OrderRow, load_order

__all__ = (
    "REVERSALS",
    "Effect",
    "Handler",
    "NotOurs",
    "Pending",
    "apply_effect",
    "replay_pending",
    "serialise_payment_intent",
)

log = structlog.get_logger()

Obj = Mapping[str, Any]


PAYMENT_INTENT_LOCK = 0x5354_5249
"""First key of the PostgreSQL advisory lock on a payment intent (the second is its hash)."""


@dataclass(frozen=True, slots=True)
class Effect:
    """What an event's effect did; ``outcome`` is what the ``stripe_event`` row records."""

    outcome: str
    pending_payment_intent_id: str | None = None
    failed: bool = False
    """The effect failed on the event's data (``outcome`` is ``failed: <error>``); nothing written."""


class NotOurs(Exception):
    """The event cannot concern a payment of ours (e.g. no payment intent): stored, acknowledged.

    Its own class, so a KeyError or IndexError raised by an effect is not mistaken for it and
    acknowledged (which would lose the effect); those roll back and answer 5xx.
    """


class Pending(Exception):
    """The event's order is not credited yet: keep the event until it is."""

    def __init__(self, payment_intent_id: str) -> None:
        super().__init__(payment_intent_id)
        self.payment_intent_id = payment_intent_id


Handler = Callable[[SqlConnection, Obj], Effect]


@lru_cache(maxsize=1)
def _statements() -> dict[str, Any]:
    by_id = ENTRIES.c.kind == "refund"
    return {
        "refund_totals": select(
            func.coalesce(func.sum(ENTRIES.c.units), 0),
            func.coalesce(func.sum(case((by_id, ENTRIES.c.amount), else_=0)), 0),
            func.coalesce(func.max(case((~by_id, ENTRIES.c.amount), else_=0)), 0),
        ).where(
            ENTRIES.c.order_id == bindparam("order_id"),
            ENTRIES.c.kind.in_([literal("refund"), literal("refund_total")]),
        ),
        "ended": select(func.count())
        .select_from(ENTRIES)
        .where(ENTRIES.c.idempotency_key.in_([bindparam("release"), bindparam("loss")])),
        # PostgreSQL only (see serialise_payment_intent); the first key names this use.
        "lock_payment_intent": select(
            func.pg_advisory_xact_lock(
                literal(PAYMENT_INTENT_LOCK), func.hashtext(bindparam("pi", type_=String))
            )
        ),
    }


def serialise_payment_intent(conn: SqlConnection, payment_intent_id: str) -> bool:
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
    """The credited order paid by this payment intent, locked; raises Pending when not yet."""
    if payment_intent_id is None:
        raise NotOurs("no payment intent")
    order = load_order(conn, "by_payment_intent", payment_intent_id)
    if order is not None and order.fulfilled_at is not None:
        return order
    if serialise_payment_intent(conn, payment_intent_id):
        # A crediting transaction that committed while we waited has not seen us: look again.
        order = load_order(conn, "by_payment_intent", payment_intent_id)
        if order is not None and order.fulfilled_at is not None:
            return order
    raise Pending(payment_intent_id)


def _units_for(order: OrderRow, amount: int) -> int:
    """Units bought with ``amount`` of what the buyer paid, rounded down, never more than all."""
    paid = order.paid
    if paid <= 0:
        return order.total_units
    return order.total_units * min(max(amount, 0), paid) // paid


# --- refunds ---------------------------------------------------------------------------------


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
    entry = take_back(
        conn,
        user_id=order.user_id,
        asset=order.asset,
        units=max(target - taken, 0),
        kind="refund" if refund_id is not None else "refund_total",
        key=f"refund:{refund_id}" if refund_id is not None else cumulative_key,
        order_id=order.id,
        amount=amount,
        reason=f"refund of {major_units(amount, order.currency)}"
        if refund_id
        else f"refunded in total {major_units(amount, order.currency)}",
    )
    return entry is not None


def _notify_refund(conn: SqlConnection, order: OrderRow) -> None:
    """Queue the buyer's refund notice, keyed on the order's refunded total after this refund.

    ``charge.refunded`` and ``refund.*`` describing one refund reach the same total, so they
    queue one notice; each later refund raises the total and gets its own.
    """
    totals = conn.execute(_statements()["refund_totals"], {"order_id": order.id}).one()
    refunded = min(max(int(totals[1]), int(totals[2])), order.paid)
    data = {"order_id": order.id, "refunded": refunded, "units_taken": -int(totals[0])}
    enqueue(conn, "refund", user_id=order.user_id, data=data, key=f"refund:{order.id}:{refunded}")


def _succeeded_refunds(charge: Obj) -> list[tuple[str, int]]:
    """(id, amount) of the succeeded refunds a charge lists (all read before anything is written)."""
    refunds = charge.get("refunds")
    if refunds is None:
        return []
    if not isinstance(refunds, Mapping):
        raise BadEventData(f"refunds must be a list object, got {type(refunds).__name__}")
    found = []
    for refund in list_field(refunds, "data"):
        if not isinstance(refund, Mapping):
            raise BadEventData(f"refunds.data holds a {type(refund).__name__}")
        refund_id = optional_id(refund.get("id"))
        if refund_id is not None and refund.get("status") == "succeeded":
            found.append((refund_id, int_field(refund, "amount", maximum=AMOUNT_MAX)))
    return found


def _charge_refunded(conn: SqlConnection, charge: Obj) -> Effect:
    refunds = _succeeded_refunds(charge)
    cumulative = int_field(charge, "amount_refunded", maximum=AMOUNT_MAX, default=0)
    key = f"refund:{optional_id(charge.get('id'))}:total:{cumulative}"
    order = _credited_order(conn, optional_id(charge.get("payment_intent"), "payment_intent"))
    applied = 0
    for refund_id, amount in refunds:
        applied += _take_back(conn, order, refund_id=refund_id, amount=amount)
    applied += _take_back(conn, order, refund_id=None, amount=cumulative, cumulative_key=key)
    if applied:
        _notify_refund(conn, order)
    return Effect(f"refund {'applied' if applied else 'already applied'} order {order.id}")


def _refund_event(conn: SqlConnection, refund: Obj) -> Effect:
    status = text_field(refund, "status")
    if status != "succeeded":
        return Effect(f"ignored refund status {status}")
    refund_id, amount = required_id(refund), int_field(refund, "amount", maximum=AMOUNT_MAX)
    order = _credited_order(conn, optional_id(refund.get("payment_intent"), "payment_intent"))
    new = _take_back(conn, order, refund_id=refund_id, amount=amount)
    if new:
        _notify_refund(conn, order)
    return Effect(f"refund {'applied' if new else 'already applied'} order {order.id}")


# --- disputes --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Dispute:
    """The fields of a dispute its effects use, read (and checked) before anything is written."""

    id: str
    amount: int
    reason: str
    payment_intent_id: str | None

    @classmethod
    def read(cls, dispute: Obj) -> _Dispute:
        return cls(
            id=required_id(dispute),
            amount=int_field(dispute, "amount", maximum=AMOUNT_MAX, default=0),
            reason=text_field(dispute, "reason") or "no reason",
            payment_intent_id=optional_id(dispute.get("payment_intent"), "payment_intent"),
        )


def _dispute_entry(conn: SqlConnection, order: OrderRow, dispute: _Dispute, kind: str) -> bool:
    """Post one of a dispute's entries (hold, release or loss) once; True if it was new.

    The hold takes the units like a refund does (the order's lot first, debt for what was
    spent) into ``held``; a win gives them back (debt first, then the lots they came from);
    a loss only lets the held units go.
    """
    units = _units_for(order, dispute.amount)
    common: dict[str, Any] = {
        "user_id": order.user_id,
        "asset": order.asset,
        "kind": kind,
        "order_id": order.id,
        "amount": dispute.amount,
    }
    if kind == "dispute_hold":
        entry = take_back(
            conn,
            units=units,
            held_units=units,
            key=f"{kind}:{dispute.id}",
            reason=f"disputed ({dispute.reason})",
            **common,
        )
    elif kind == "dispute_release":
        entry = give_back(
            conn,
            units=units,
            held_units=-units,
            key=f"{kind}:{dispute.id}",
            taken_by=f"dispute_hold:{dispute.id}",
            reason="dispute won",
            **common,
        )
    else:
        entry = post_entry(
            conn,
            units=0,
            held_units=-units,
            idempotency_key=f"{kind}:{dispute.id}",
            reason="dispute lost",
            **common,
        )
    return entry is not None


def _lost_or_released(conn: SqlConnection, dispute_id: str) -> bool:
    """True if this dispute already ended (won or lost): its held units are gone."""
    keys = {"release": f"dispute_release:{dispute_id}", "loss": f"dispute_loss:{dispute_id}"}
    return bool(conn.execute(_statements()["ended"], keys).scalar())


def _dispute_created(conn: SqlConnection, obj: Obj) -> Effect:
    dispute = _Dispute.read(obj)
    order = _credited_order(conn, dispute.payment_intent_id)
    new = _dispute_entry(conn, order, dispute, "dispute_hold")
    return Effect(f"dispute {'held' if new else 'already held'} order {order.id}")


def _dispute_end(conn: SqlConnection, obj: Obj, won: bool) -> Effect:
    dispute = _Dispute.read(obj)
    order = _credited_order(conn, dispute.payment_intent_id)
    # A close that comes before its ``created`` event: hold first, so hold/end always pair up
    # (and a late ``created`` then finds the hold key taken).
    _dispute_entry(conn, order, dispute, "dispute_hold")
    if _lost_or_released(conn, dispute.id):
        return Effect(f"dispute already closed order {order.id}")
    if won:
        _dispute_entry(conn, order, dispute, "dispute_release")
        return Effect(f"dispute released order {order.id}")
    _dispute_entry(conn, order, dispute, "dispute_loss")
    return Effect(f"dispute lost order {order.id}")


def _dispute_closed(conn: SqlConnection, dispute: Obj) -> Effect:
    status = text_field(dispute, "status")
    if status in ("won", "warning_closed"):
        return _dispute_end(conn, dispute, won=True)
    if status == "lost":
        return _dispute_end(conn, dispute, won=False)
    return Effect(f"ignored dispute status {status}")


def _dispute_reinstated(conn: SqlConnection, dispute: Obj) -> Effect:
    return _dispute_end(conn, dispute, won=True)


REVERSALS: dict[str, Handler] = {
    "charge.refunded": _charge_refunded,
    "refund.created": _refund_event,
    "refund.updated": _refund_event,
    "charge.refund.updated": _refund_event,
    "charge.dispute.created": _dispute_created,
    "charge.dispute.closed": _dispute_closed,
    "charge.dispute.funds_reinstated": _dispute_reinstated,
}
"""Event type -> effect for everything that takes units back or holds them."""


def apply_effect(
    conn: SqlConnection, handler: Handler | None, obj: Obj, *, event_id: str = "", event_type: str = ""
) -> Effect:
    """Run one event's effect; a not-yet-credited order, a payment not ours or bad data is an outcome too.

    Bad data (:class:`BadEventData`, raised before the effect writes anything) is never
    retryable: the event is kept as ``failed: <error>`` for an operator, logged and counted,
    and answered 2xx. Anything else (a database error) propagates: roll back, answer 5xx.
    """
    if handler is None:
        return Effect("ignored")
    try:
        return handler(conn, obj)
    except Pending as pending:
        return Effect("pending until the order is credited", pending.payment_intent_id)
    except NotOurs as missing:
        return Effect(f"ignored: {missing}")
    except BadEventData as error:
        log.warning("stripe_event.failed", event_id=event_id, type=event_type, error=str(error))
        return Effect(f"{FAILED_PREFIX}{error}", failed=True)


def replay_pending(conn: SqlConnection, order: OrderRow) -> None:
    """Apply the refunds and disputes that waited for this order's credit, oldest first."""
    pi = order.stripe_payment_intent_id
    if pi is None:
        return
    serialise_payment_intent(conn, pi)
    for event_id, event_type, payload in waiting_for(conn, pi):
        event = msgspec.json.decode(payload)
        handler = REVERSALS.get(event_type)
        obj = event["data"]["object"]
        effect = apply_effect(conn, handler, obj, event_id=event_id, event_type=event_type)
        # A failed replay is kept as failed (listed for the operator); the credit stands.
        set_outcome(conn, event_id, effect.outcome if effect.failed else f"after credit: {effect.outcome}")
        log.info("webhook.pending_applied", event_id=event_id, type=event_type, outcome=effect.outcome)
