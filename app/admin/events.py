"""``/admin/events``: Stripe events (filters, payload, the failed effect's error, replay) and the
host webhook deliveries (redeliver).

A replay runs the stored event through the same handlers as the webhook
(``app.money.events.replay_event``), idempotent like every effect; a redelivery is
``app.host_webhooks.service.redeliver``, as ``storefront webhooks redeliver`` does. Each writes
its audit row in the same operation of the request's transaction.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any, Final, Literal

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import Parameter
from litestar.plugins.flash import flash
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER, HTTP_400_BAD_REQUEST
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import i18n
from app.accounts.account_page import format_when
from app.accounts.models import User
from app.admin.audit import reason_problem, record
from app.admin.pages import admin_page
from app.admin.paging import PageNumber, paginate
from app.db.sql import SqlConnection, run
from app.host_webhooks.service import (
    DELIVERY_STATUSES,
    DeliveryRow,
    EndpointError,
    list_deliveries,
    load_delivery,
    redeliver,
)
from app.i18n import gettext as _
from app.money.event_store import FAILED_PREFIX
from app.money.events import HANDLERS, ProcessOutcome, replay_event
from app.money.models import StripeEvent
from app.settings import Settings
from app.web.params import OptionalRowId, RowId
from app.web.requests import form_texts
from app.web.transactions import READ_ONLY_OPT

__all__ = ("ROUTES",)

Outcome = Literal["failed", "pending", "ignored", "applied"]
EventType = Annotated[str, Parameter(max_length=100)]
EventId = Annotated[str, Parameter(min_length=1, max_length=255)]
DeliveryStatus = Literal["pending", "delivered", "failed", "canceled"]
DELIVERIES_SHOWN: Final = 100


def _outcome_label(outcome: str) -> str:
    labels = {
        "failed": _("Effect failed"),
        "pending": _("Waiting for its order"),
        "ignored": _("Ignored"),
        "applied": _("Applied"),
    }
    return labels.get(outcome, outcome)


def _filtered(event_type: str, outcome: Outcome | None) -> Any:
    query = select(StripeEvent).order_by(StripeEvent.received_at.desc(), StripeEvent.id.desc())
    if event_type:
        query = query.where(StripeEvent.type == event_type)
    failed = StripeEvent.outcome.startswith(FAILED_PREFIX, autoescape=True)
    ignored = StripeEvent.outcome.startswith("ignored", autoescape=True)
    pending = StripeEvent.pending_payment_intent_id.is_not(None)
    if outcome == "failed":
        query = query.where(failed)
    elif outcome == "pending":
        query = query.where(pending)
    elif outcome == "ignored":
        query = query.where(ignored)
    elif outcome == "applied":
        query = query.where(~failed, ~ignored, ~pending)
    return query


@get("/events", name="admin:events", opt={READ_ONLY_OPT: True})
async def events_list(
    request: Request[Any, Any, Any],
    db_session: AsyncSession,
    type: EventType = "",
    outcome: Outcome | None = None,
    page: PageNumber = 1,
) -> Template:
    """Stored Stripe events, newest first, by type and by what their effect did."""
    found = await paginate(db_session, _filtered(type.strip(), outcome), page)
    locale = i18n.current_locale()
    rows = [
        {
            "event": e,
            "received": format_when(e.received_at, locale),
            "failed": e.outcome.startswith(FAILED_PREFIX),
        }
        for e in found.items
    ]
    filters = {"type": type.strip(), "outcome": outcome or ""}
    outcomes = [(value, _outcome_label(value)) for value in ("failed", "pending", "ignored", "applied")]
    context = {
        "rows": rows,
        "page": found,
        "filters": filters,
        "types": sorted(HANDLERS),
        "outcomes": outcomes,
    }
    return admin_page(request, "events.html", context, section="admin:events")


def _pretty(payload: str) -> str:
    try:
        return json.dumps(json.loads(payload), indent=2, ensure_ascii=False, sort_keys=True)
    except ValueError:
        return payload


async def _event_page(
    request: Request[Any, Any, Any], db: AsyncSession, event_id: str, *, error: str | None = None
) -> Template:
    event = await db.get(StripeEvent, event_id)
    if event is None:
        raise NotFoundException("no such event")
    failed = event.outcome.startswith(FAILED_PREFIX)
    context = {
        "event": event,
        "received": format_when(event.received_at, i18n.current_locale()),
        "payload": _pretty(event.payload),
        "failure": event.outcome[len(FAILED_PREFIX) :] if failed else None,
        "handled": event.type in HANDLERS,
        "error": error,
    }
    status = HTTP_400_BAD_REQUEST if error else 200
    return admin_page(request, "event.html", context, section="admin:events", status_code=status)


@get("/events/{event_id:str}", name="admin:event", opt={READ_ONLY_OPT: True})
async def event_detail(
    request: Request[Any, Any, Any], db_session: AsyncSession, event_id: EventId
) -> Template:
    return await _event_page(request, db_session, event_id)


async def _reason(request: Request[Any, Any, Any]) -> str:
    return (await form_texts(request, "reason"))["reason"]


def _replay_and_audit(
    conn: SqlConnection, *, actor_id: int, event_id: str, reason: str, livemode: bool, before: str
) -> ProcessOutcome | None:
    replayed = replay_event(conn, event_id, livemode=livemode)
    if replayed is not None:
        record(
            conn,
            actor_id,
            "event.replay",
            ("event", event_id),
            reason,
            {"outcome": before},
            {"outcome": replayed.outcome},
        )
    return replayed


@post("/events/{event_id:str}/replay", name="admin:event_replay")
async def replay(
    request: Request[Any, Any, Any], db_session: AsyncSession, admin: User, event_id: EventId
) -> Template | Redirect:
    """Run the stored event through its handler again; the page then shows the new outcome."""
    event = await db_session.get(StripeEvent, event_id)
    if event is None:
        raise NotFoundException("no such event")
    reason = await _reason(request)
    if problem := reason_problem(reason):
        return await _event_page(request, db_session, event_id, error=problem)
    settings: Settings = request.app.state["settings"]
    try:
        replayed = await run(
            db_session,
            _replay_and_audit,
            actor_id=admin.id,
            event_id=event_id,
            reason=reason,
            livemode=settings.stripe_livemode,
            before=event.outcome,
        )
    except ValueError as error:  # the stored payload is not a Stripe event any more
        return await _event_page(request, db_session, event_id, error=str(error))
    if replayed is None:  # gone meanwhile (it never is: events are not deleted)
        raise NotFoundException("no such event")
    await db_session.refresh(event)
    if replayed.failed:
        flash(request, _("Replayed: the effect failed again."), category="error")
    else:
        flash(request, _("Replayed: %(outcome)s") % {"outcome": replayed.outcome}, category="success")
    url = request.app.route_reverse("admin:event", event_id=event_id)
    return Redirect(path=url, status_code=HTTP_303_SEE_OTHER)


async def _deliveries_page(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    status: DeliveryStatus | None,
    endpoint: int | None,
    *,
    error: str | None = None,
) -> Template:
    rows = await run(db, list_deliveries, endpoint_id=endpoint, status=status, limit=DELIVERIES_SHOWN)
    locale = i18n.current_locale()
    context = {
        "rows": [{"delivery": d, "delivered": format_when(d.delivered_at, locale)} for d in rows],
        "statuses": DELIVERY_STATUSES,
        "filters": {"status": status or "", "endpoint": "" if endpoint is None else str(endpoint)},
        "error": error,
    }
    code = HTTP_400_BAD_REQUEST if error else 200
    return admin_page(request, "deliveries.html", context, section="admin:events", status_code=code)


@get("/deliveries", name="admin:deliveries", opt={READ_ONLY_OPT: True})
async def deliveries(
    request: Request[Any, Any, Any],
    db_session: AsyncSession,
    status: DeliveryStatus | None = None,
    endpoint: OptionalRowId = None,
) -> Template:
    """The host webhook delivery log, newest first."""
    return await _deliveries_page(request, db_session, status, endpoint)


def _redeliver_and_audit(
    conn: SqlConnection, *, actor_id: int, delivery_id: int, reason: str
) -> DeliveryRow | None:
    before = load_delivery(conn, delivery_id)
    if before is None:
        return None
    after = redeliver(conn, delivery_id, now=int(time.time()))
    if after is not None:
        record(
            conn,
            actor_id,
            "delivery.redeliver",
            ("delivery", delivery_id),
            reason,
            {"status": before.status, "attempts": before.attempts},
            {"status": after.status, "attempts": after.attempts},
        )
    return after


@post("/deliveries/{delivery_id:int}/redeliver", name="admin:delivery_redeliver")
async def redeliver_delivery(
    request: Request[Any, Any, Any], db_session: AsyncSession, admin: User, delivery_id: RowId
) -> Template | Redirect:
    """Send one delivery again as soon as a deliverer looks, with a fresh day of retries."""
    reason = await _reason(request)
    if problem := reason_problem(reason):
        return await _deliveries_page(request, db_session, None, None, error=problem)
    try:
        done = await run(
            db_session, _redeliver_and_audit, actor_id=admin.id, delivery_id=delivery_id, reason=reason
        )
    except EndpointError as error:
        return await _deliveries_page(request, db_session, None, None, error=str(error))
    if done is None:
        raise NotFoundException("no such delivery")
    flash(request, _("Delivery %(id)s will be sent again.") % {"id": delivery_id}, category="success")
    return Redirect(path=request.app.route_reverse("admin:deliveries"), status_code=HTTP_303_SEE_OTHER)


ROUTES: list[Any] = [events_list, event_detail, replay, deliveries, redeliver_delivery]
