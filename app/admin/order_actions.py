"""The console's order actions: refund all or part, and end a ``needs_review`` order.

Each is a POST (CSRF-checked) and writes its audit row in the request's transaction, after
Stripe agreed: an audit row never claims a refund Stripe refused. A refund's units come back
only when Stripe's refund event arrives (``app.money.reversals``), so the order page shows it
pending until then. Stripe calls carry idempotency keys (the form's one-time token, or the
order for a review's refund), so a double submit never refunds twice.

On SQLite the request holds the write lock from its first statement (the admin check), so the
webhook writer waits for the one Stripe call an action makes; an admin acts rarely, and that
call is the same one the refund would need from any other place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from litestar import Request, post
from litestar.exceptions import NotFoundException
from litestar.plugins.flash import flash
from litestar.response import Redirect, Template
from litestar.status_codes import (
    HTTP_303_SEE_OTHER,
    HTTP_400_BAD_REQUEST,
    HTTP_409_CONFLICT,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.admin.audit import reason_problem, record
from app.admin.order_queries import REFUND_ACTION, OrderStory, order_story
from app.admin.orders import order_page
from app.catalogue.money import MoneyError, format_money, to_minor
from app.db.sql import SqlConnection, run
from app.i18n import gettext as _
from app.money.fulfilment import credit_order
from app.money.models import OrderStatus
from app.money.orders import leave_review
from app.stripe_gateway import PaymentProviderError, ProviderUnavailable, StripeGateway, as_mapping
from app.web.params import RowId

__all__ = ("ROUTES",)

_AMOUNT: Final = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,4})?")  # ASCII digits: \d matches any script's
_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{16,64}")
Resolution = Literal["credit", "refund", "close"]


@dataclass(frozen=True, slots=True)
class _Submission:
    """An action's form and its order, and how to refuse it: the order page with the errors."""

    request: Request[Any, Any, Any]
    db: AsyncSession
    story: OrderStory
    form: dict[str, str]

    async def refused(self, errors: dict[str, str], status: int = HTTP_400_BAD_REQUEST) -> Template:
        return await order_page(
            self.request, self.db, self.story.order.id, errors=errors, form=self.form, status_code=status
        )


async def _submission(
    request: Request[Any, Any, Any], db: AsyncSession, order_id: int, *names: str
) -> _Submission:
    """The fields ``names`` as stripped strings (missing or odd: empty) and the order (else 404)."""
    sent = await request.form()
    form = {}
    for name in names:
        value = sent.get(name)
        form[name] = value.strip() if isinstance(value, str) else ""
    story = await order_story(db, order_id)
    if story is None:
        raise NotFoundException(detail="no such order")
    return _Submission(request, db, story, form)


def _provider_status(error: PaymentProviderError) -> int:
    return HTTP_503_SERVICE_UNAVAILABLE if isinstance(error, ProviderUnavailable) else HTTP_409_CONFLICT


def _back(order_id: int) -> Redirect:
    return Redirect(path=f"/admin/orders/{order_id}", status_code=HTTP_303_SEE_OTHER)


# --- refund ------------------------------------------------------------------------------------


@post("/orders/{order_id:int}/refund", name="admin:order:refund")
async def refund_order(
    request: Request[Any, Any, Any],
    db_session: AsyncSession,
    stripe: StripeGateway,
    admin: User,
    order_id: RowId,
) -> Template | Redirect:
    """Ask Stripe to refund ``amount`` (major units; empty: all that is left) of a credited order."""
    sent = await _submission(request, db_session, order_id, "amount", "reason", "token")
    story, form, refused = sent.story, sent.form, sent.refused
    order = story.order

    if order.fulfilled_at is None or order.stripe_payment_intent_id is None or story.refundable <= 0:
        return await refused({"refund": _("This order has nothing left to refund.")}, HTTP_409_CONFLICT)
    errors: dict[str, str] = {}
    amount = story.refundable
    if form["amount"]:
        try:
            if not _AMOUNT.fullmatch(form["amount"]):
                raise MoneyError("not a plain amount")
            amount = to_minor(form["amount"], order.currency)
        except MoneyError:
            errors["amount"] = _("Please enter an amount such as 4.99 in %(currency)s.") % {
                "currency": order.currency.upper()
            }
        else:
            if not 0 < amount <= story.refundable:
                errors["amount"] = _("The amount must be more than zero and at most %(left)s.") % {
                    "left": format_money(story.refundable, order.currency)
                }
    if problem := reason_problem(form["reason"]):
        errors["reason"] = problem
    if not _TOKEN.fullmatch(form["token"]):
        errors["refund"] = _("This form has expired. Please reload the page and try again.")
    if errors:
        return await refused(errors)
    try:
        refund = await stripe.create_refund(
            payment_intent=order.stripe_payment_intent_id,
            amount=amount,
            reason="requested_by_customer",
            idempotency_key=f"admin-refund-{order.id}-{form['token']}",
            metadata={"order_id": str(order.id), "admin_id": str(admin.id)},
        )
    except PaymentProviderError as error:
        return await refused({"refund": error.user_message()}, _provider_status(error))
    if refund.id not in {r.refund_id for r in story.asked}:  # a resubmitted form: Stripe's same refund
        await run(
            db_session,
            record,
            admin.id,
            REFUND_ACTION,
            ("order", order.id),
            form["reason"],
            {"refunded": story.refunded, "pending": story.pending_amount},
            {"refund_id": refund.id, "amount": amount, "status": refund.status},
        )
    flash(
        request,
        _("Refund of %(amount)s asked for. The units come back when Stripe confirms it.")
        % {"amount": format_money(amount, order.currency)},
        category="success",
    )
    return _back(order.id)


# --- needs_review ------------------------------------------------------------------------------


def _resolve(
    conn: SqlConnection,
    order_id: int,
    resolution: Resolution,
    *,
    reason: str,
    session_id: str | None,
    payment_intent_id: str | None,
) -> dict[str, Any] | None:
    """End the review in the caller's transaction (credit, or cancel); what the audit row's
    ``after`` says, or ``None`` when the order is no longer in review."""
    if resolution == "credit":
        order = leave_review(
            conn,
            order_id,
            OrderStatus.PAID,
            f"credited by an admin: {reason}",
            payment_intent_id=payment_intent_id,
            fulfilled_at=datetime.now(UTC),
        )
        entry = credit_order(conn, order, session_id or "") if order is not None else None
        after: dict[str, Any] = {"status": OrderStatus.PAID.value, "entry_id": entry.id if entry else None}
    else:
        words = "refunded" if resolution == "refund" else "closed"
        order = leave_review(
            conn,
            order_id,
            OrderStatus.CANCELED,
            f"{words} by an admin: {reason}",
            payment_intent_id=payment_intent_id,
        )
        after = {"status": OrderStatus.CANCELED.value}
    return None if order is None else after


def _payment_intent_of(session: Mapping[str, Any]) -> str | None:
    value = session.get("payment_intent")
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


@post("/orders/{order_id:int}/resolve", name="admin:order:resolve")
async def resolve_order(
    request: Request[Any, Any, Any],
    db_session: AsyncSession,
    stripe: StripeGateway,
    admin: User,
    order_id: RowId,
) -> Template | Redirect:
    """End a ``needs_review`` order: credit anyway, refund the whole payment, or close it."""
    sent = await _submission(request, db_session, order_id, "resolution", "reason")
    form, refused = sent.form, sent.refused
    order = sent.story.order

    if order.status != OrderStatus.NEEDS_REVIEW:
        return await refused({"resolve": _("This order is not waiting for review.")}, HTTP_409_CONFLICT)
    errors: dict[str, str] = {}
    resolution = form["resolution"]
    if resolution not in ("credit", "refund", "close"):
        errors["resolution"] = _("Please choose what to do with this order.")
    if problem := reason_problem(form["reason"]):
        errors["reason"] = problem
    if errors:
        return await refused(errors)
    payment_intent = order.stripe_payment_intent_id
    if resolution != "close":
        if not order.stripe_session_id:
            return await refused({"resolve": _("Stripe has no payment for this order.")}, HTTP_409_CONFLICT)
        try:
            session = as_mapping(await stripe.retrieve_session(order.stripe_session_id))
        except PaymentProviderError as error:
            return await refused({"resolve": error.user_message()}, _provider_status(error))
        payment_intent = _payment_intent_of(session) or payment_intent
        if session.get("payment_status") != "paid" or payment_intent is None:
            return await refused({"resolve": _("Stripe says this order was not paid.")}, HTTP_409_CONFLICT)
    # The move first: of two admins resolving at once, one finds the order no longer in review.
    moved = await run(
        db_session,
        _resolve,
        order.id,
        resolution,  # type: ignore[arg-type]  # checked above
        reason=form["reason"],
        session_id=order.stripe_session_id,
        payment_intent_id=payment_intent,
    )
    if moved is None:
        return await refused({"resolve": _("This order is not waiting for review.")}, HTTP_409_CONFLICT)
    if resolution == "refund" and payment_intent is not None:
        try:
            # Stripe refunds what it charged (which is why the order is in review): no amount.
            refund = await stripe.create_refund(
                payment_intent=payment_intent,
                reason="requested_by_customer",
                idempotency_key=f"admin-resolve-refund-{order.id}",
                metadata={"order_id": str(order.id), "admin_id": str(admin.id)},
            )
        except PaymentProviderError as error:
            await db_session.rollback()  # the move: the page shows the order in review
            return await refused({"resolve": error.user_message()}, _provider_status(error))
        moved |= {"refund_id": refund.id, "amount": refund.amount, "refund_status": refund.status}
    # Written after Stripe agreed, so a resolve-by-refund's row names the refund it made.
    await run(
        db_session,
        record,
        admin.id,
        f"order.resolve.{resolution}",
        ("order", order.id),
        form["reason"],
        {"status": OrderStatus.NEEDS_REVIEW.value},
        moved,
    )
    messages = {
        "credit": _("The order was credited."),
        "refund": _("The payment was refunded and the order closed."),
        "close": _("The order was closed."),
    }
    flash(request, messages[resolution], category="success")
    return _back(order.id)


ROUTES: list[Any] = [refund_order, resolve_order]
