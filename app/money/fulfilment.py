"""Stripe's ``fulfill_checkout`` pattern: one function that credits a paid Checkout Session once.

The webhook, the success page and reconciliation all call :func:`fulfil_checkout` with the
Checkout Session as a plain dict; whoever comes first credits, the others find the ledger key
``fulfil:<session id>`` taken. Nothing here trusts the order of arrival: the credit is guarded
by the UNIQUE ledger key, the state by a conditional UPDATE (``app.money.orders``), and on
PostgreSQL the order row is locked first so concurrent calls for one order queue and each
sees the last commit. Refunds and disputes that arrived before the credit are applied right
after it, in the same transaction (``app.money.reversals.replay_pending``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import structlog

from app.catalogue.money import major_units
from app.db.sql import SqlConnection
from app.mail.outbox import enqueue
from app.money.credits import credit
from app.money.fields import AMOUNT_MAX, optional_id, text_field
from app.money.ledger import EntryRow
from app.money.models import LotKind, OrderStatus
from app.money.orders import OrderRow, load_order, order_for_session, record_charge, transition
from app.money.reversals import replay_pending

__all__ = ("FulfilOutcome", "FulfilResult", "credit_order", "fulfil_checkout")

log = structlog.get_logger()

FulfilOutcome = Literal[
    "credited", "already_credited", "awaiting_payment", "needs_review", "not_paid", "unknown_order"
]


@dataclass(slots=True)
class FulfilResult:
    """What fulfilment did, with the order as this transaction now sees it (None: unknown order)."""

    outcome: FulfilOutcome
    order: OrderRow | None
    entry: EntryRow | None = None

    @property
    def credited(self) -> bool:
        return self.outcome == "credited"


def _settle(conn: SqlConnection, order: OrderRow, to: OrderStatus, **values: Any) -> OrderRow:
    """Move the order if its state allows; the order as it now is either way."""
    moved = transition(conn, order_id=order.id, to=to, **values)
    if moved is not None:
        return moved
    return load_order(conn, "by_id", order.id) or order


def fulfil_checkout(conn: SqlConnection, session_obj: Mapping[str, Any]) -> FulfilResult:
    """Credit a paid Checkout Session exactly once, in the caller's transaction.

    ``session_obj`` is the Checkout Session as a dict (an event's ``data.object`` or a
    retrieved session's ``to_dict()``). The subtotal and currency must equal the order's snapshot
    and the total must follow from them, the discount and the tax, else the order goes to
    ``needs_review`` and nothing is credited. Discount, tax and the amount paid are recorded on
    the order (refunds take back units in proportion to what was paid).
    """
    # Every field is read (and checked: app.money.fields) before anything is written.
    session_id = optional_id(session_obj.get("id")) or ""
    status = text_field(session_obj, "status")
    payment_status = text_field(session_obj, "payment_status")
    pi = optional_id(session_obj.get("payment_intent"), "payment_intent")
    # Only compared with the snapshot: anything but an integer is a mismatch (None).
    amount_total = _amount(session_obj.get("amount_total"))
    amount_subtotal = _amount(session_obj.get("amount_subtotal"))
    details = session_obj.get("total_details") or {}
    if not isinstance(details, Mapping):
        details = {"amount_discount": None}
    discount = _amount(details.get("amount_discount", 0))
    tax = _amount(details.get("amount_tax", 0))
    currency = text_field(session_obj, "currency", limit=16) or ""
    order = order_for_session(conn, session_obj)
    if order is None:
        log.warning("fulfil.unknown_order", session_id=session_id)
        return FulfilResult("unknown_order", None)
    if order.stripe_session_id != session_id:
        # metadata points at an order that belongs to another session: a human decides.
        order = _settle(
            conn, order, OrderStatus.NEEDS_REVIEW, reason=f"paid through another session {session_id}"
        )
        log.warning("fulfil.session_mismatch", order_id=order.id, session_id=session_id)
        return FulfilResult("needs_review", order)

    # A total of 0 (a 100 % promotion code) completes with nothing to pay and no PaymentIntent.
    free = payment_status == "no_payment_required"
    if payment_status != "paid" and not free:
        if status == "complete" and payment_status == "unpaid":
            order = _settle(conn, order, OrderStatus.AWAITING_PAYMENT, payment_intent_id=pi)
            if order.status == OrderStatus.AWAITING_PAYMENT:
                return FulfilResult("awaiting_payment", order)
        elif status == "expired":
            order = _settle(conn, order, OrderStatus.EXPIRED, reason="session expired")
        return FulfilResult("needs_review" if order.status == OrderStatus.NEEDS_REVIEW else "not_paid", order)

    charge = _charge(order.amount, amount_subtotal, discount, tax, amount_total)
    if free and (status != "complete" or amount_total != 0):
        charge = None  # Stripe never says so of a session that charges something
    if charge is None or currency.lower() != order.currency.lower():
        parts = ""
        if discount or tax or amount_subtotal != amount_total:
            parts = (
                f" (subtotal {major_units(amount_subtotal, currency)}, discount"
                f" {major_units(discount, currency)}, tax {major_units(tax, currency)})"
            )
        reason = (
            f"Stripe charged {major_units(amount_total, currency)}{parts},"
            f" the order says {major_units(order.amount, order.currency)}"
        )
        if amount_total is not None and currency.lower() == order.currency.lower():
            # What Stripe charged, kept for the review: an admin crediting it anyway, and the
            # refunds after, then count what was paid, not a snapshot Stripe never charged.
            record_charge(conn, order, discount=discount or 0, tax=tax or 0, paid=amount_total)
        order = _settle(conn, order, OrderStatus.NEEDS_REVIEW, reason=reason)
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

    if order.status == OrderStatus.PAID:
        record_charge(conn, order, discount=charge[0], tax=charge[1], paid=charge[2])
    else:
        now = datetime.now(UTC)
        order = _settle(
            conn, order, OrderStatus.PAID, payment_intent_id=pi, fulfilled_at=now, reason="", charge=charge
        )
        if order.status != OrderStatus.PAID:
            # The move was refused: needs_review stays for a human, nothing is credited, and the
            # charge is kept for the review all the same.
            record_charge(conn, order, discount=charge[0], tax=charge[1], paid=charge[2])
            return FulfilResult("needs_review", order)
    entry = credit_order(conn, order, session_id)
    if entry is None:
        return FulfilResult("already_credited", order)
    return FulfilResult("credited", order, entry)


def _amount(value: object) -> int | None:
    """A non-negative integer amount, else None (a bool or a float is not one)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= AMOUNT_MAX:
        return value
    return None


def _charge(
    snapshot: int, subtotal: int | None, discount: int | None, tax: int | None, total: int | None
) -> tuple[int, int, int] | None:
    """(discount, tax, paid) if the session sold the order's pack at its snapshot price, else None.

    The order is one pack (quantity 1), so the subtotal must be the snapshot price; the total
    must be that less the discount, plus the tax when it was added on top (an inclusive tax is
    already inside the subtotal).
    """
    if subtotal != snapshot or discount is None or tax is None or total is None or discount > subtotal:
        return None
    if total not in (subtotal - discount, subtotal - discount + tax):
        return None
    return discount, tax, total


def credit_order(conn: SqlConnection, order: OrderRow, session_id: str) -> EntryRow | None:
    """Credit a ``paid`` order's units once (ledger key ``fulfil:<session id>``), then apply the
    refunds and disputes that came before; ``None`` if it was credited already.

    Fulfilment calls it, and so does an admin crediting a ``needs_review`` order anyway.
    """
    days = order.credit_expires_days
    entry = credit(
        conn,
        user_id=order.user_id,
        asset=order.asset,
        units=order.total_units,
        kind="purchase",
        lot_kind=LotKind.PAID,
        key=f"fulfil:{session_id}",
        order_id=order.id,
        amount=order.paid,
        reason=f"{order.pack_name} ({order.units} + {order.bonus} bonus)",
        expires_at=int(time.time()) + days * 86_400 if days else None,
    )
    if entry is not None:
        # The receipt is queued with the credit: it exists exactly when the credit committed.
        enqueue(
            conn, "receipt", user_id=order.user_id, data={"order_id": order.id}, key=f"receipt:{order.id}"
        )
        replay_pending(conn, order)
    return entry
