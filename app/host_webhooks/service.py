"""Endpoints and the delivery log for an operator: what the CLI (and the admin console) call.

Like the money core, every function is synchronous on a connection in the caller's
transaction and never commits (async callers use ``app.db.sql.run``). Bad input raises
:class:`EndpointError` with a message meant for the operator, before anything is written.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, cast
from urllib.parse import urlsplit

from sqlalchemy import Table, delete, func, insert, select, update

from app.db.sql import SqlConnection
from app.host_webhooks.models import DeliveryAttempt, HostDelivery, HostEvent, WebhookEndpoint
from app.host_webhooks.outbox import EVENT_TYPES

__all__ = (
    "DELIVERY_STATUSES",
    "RETRY_WINDOW",
    "AttemptRow",
    "DeliveryRow",
    "EndpointError",
    "EndpointRow",
    "NewEndpoint",
    "add_endpoint",
    "check_url",
    "delivery_attempts",
    "list_deliveries",
    "list_endpoints",
    "load_delivery",
    "parse_events",
    "purge_settled",
    "redeliver",
    "remove_endpoint",
    "rotate_secret",
    "subscribed",
)

ENDPOINTS = cast(Table, WebhookEndpoint.__table__)
DELIVERIES = cast(Table, HostDelivery.__table__)
ATTEMPTS = cast(Table, DeliveryAttempt.__table__)
EVENTS = cast(Table, HostEvent.__table__)

DELIVERY_STATUSES: Final = ("pending", "delivered", "failed", "canceled")
RETRY_WINDOW: Final = 24 * 3600
"""Seconds a delivery is retried after it was fanned out (or redelivered) before it is ``failed``."""
URL_MAX: Final = 2000
KEEP_DAYS: Final = 30
"""Default days a settled event is kept with its deliveries and their log (a setting overrides it)."""


class EndpointError(ValueError):
    """The operator's input cannot be used; the message says why. Nothing was written."""


@dataclass(frozen=True, slots=True)
class NewEndpoint:
    id: int
    url: str
    events: str
    secret: str
    """Shown once, when the endpoint is made."""


@dataclass(frozen=True, slots=True)
class EndpointRow:
    id: int
    url: str
    events: str
    created_at: datetime
    disabled_at: datetime | None
    pending: int
    failed: int


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: int
    event_id: str
    event_type: str
    endpoint_id: int
    status: str
    attempts: int
    next_attempt_at: int
    give_up_at: int
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class AttemptRow:
    id: int
    attempted_at: datetime
    status: int | None
    error: str | None
    duration_ms: int


def parse_events(raw: str) -> str:
    """``balance.low,hold.expired`` or ``*`` as stored; every type must be one of ``EVENT_TYPES``."""
    items = list(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    known = ", ".join(EVENT_TYPES)
    if not items:
        raise EndpointError(f"name at least one event type ({known}) or '*' for all of them")
    if "*" in items:
        if len(items) > 1:
            raise EndpointError("'*' already means every event type: give it alone")
        return "*"
    unknown = [item for item in items if item not in EVENT_TYPES]
    if unknown:
        raise EndpointError(f"unknown event type(s): {', '.join(unknown)} (known: {known}, or '*')")
    return ",".join(items)


def subscribed(events: str, event_type: str) -> bool:
    """Whether an endpoint's stored ``events`` include ``event_type``."""
    return events == "*" or event_type in events.split(",")


def check_url(url: str) -> str:
    """An absolute ``http(s)://host...`` URL we can POST to, as given (trimmed)."""
    url = url.strip()
    if len(url) > URL_MAX:
        raise EndpointError(f"the URL is longer than {URL_MAX} characters")
    if any(char.isspace() for char in url):
        raise EndpointError("the URL must not contain spaces")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number or out of range
    except ValueError as error:
        raise EndpointError(f"the URL cannot be read: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EndpointError(f"the endpoint must be an absolute http:// or https:// URL, not {url!r}")
    if parts.fragment:
        raise EndpointError("the URL must not have a #fragment (it is never sent)")
    del port
    return url


def add_endpoint(conn: SqlConnection, url: str, events: str) -> NewEndpoint:
    """Validate and store an endpoint with a new ``whsec_`` secret; it gets events fanned out from now on."""
    url = check_url(url)
    events = parse_events(events)
    secret = _new_secret()
    endpoint_id = conn.execute(
        insert(ENDPOINTS).values(url=url, events=events, secret=secret).returning(ENDPOINTS.c.id)
    ).scalar()
    return NewEndpoint(id=int(endpoint_id), url=url, events=events, secret=secret)


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def rotate_secret(conn: SqlConnection, endpoint_id: int, *, now: int, overlap: int = 24 * 3600) -> str | None:
    """Give an endpoint a new secret; for ``overlap`` seconds requests carry a ``v1`` for the old
    one too, so the host can switch over without refusing anything. None: no such endpoint."""
    if overlap < 0:
        raise EndpointError("the overlap cannot be negative")
    secret = _new_secret()
    changed = conn.execute(
        update(ENDPOINTS)
        .where(ENDPOINTS.c.id == endpoint_id)
        .values(previous_secret=ENDPOINTS.c.secret, previous_until=now + overlap, secret=secret)
        .returning(ENDPOINTS.c.id)
    ).first()
    return None if changed is None else secret


def _count(status: str) -> Any:
    return (
        select(func.count())
        .select_from(DELIVERIES)
        .where(DELIVERIES.c.endpoint_id == ENDPOINTS.c.id, DELIVERIES.c.status == status)
        .scalar_subquery()
    )


def list_endpoints(conn: SqlConnection, *, include_removed: bool = True) -> list[EndpointRow]:
    """Every endpoint, oldest first, with how many deliveries wait and how many failed."""
    query = select(
        ENDPOINTS.c.id,
        ENDPOINTS.c.url,
        ENDPOINTS.c.events,
        ENDPOINTS.c.created_at,
        ENDPOINTS.c.disabled_at,
        _count("pending"),
        _count("failed"),
    ).order_by(ENDPOINTS.c.id)
    if not include_removed:
        query = query.where(ENDPOINTS.c.disabled_at.is_(None))
    return [EndpointRow(*row) for row in conn.execute(query).all()]


def remove_endpoint(conn: SqlConnection, endpoint_id: int, *, purge: bool = False) -> bool:
    """Stop sending to an endpoint; False when there is no such endpoint.

    By default it is disabled, not deleted: its deliveries still waiting become ``canceled``
    and its log stays readable. ``purge`` deletes it with its deliveries and their log.
    """
    if purge:
        conn.execute(delete(DELIVERIES).where(DELIVERIES.c.endpoint_id == endpoint_id))
        gone = conn.execute(
            delete(ENDPOINTS).where(ENDPOINTS.c.id == endpoint_id).returning(ENDPOINTS.c.id)
        ).first()
        return gone is not None
    found = conn.execute(select(ENDPOINTS.c.id).where(ENDPOINTS.c.id == endpoint_id)).first()
    if found is None:
        return False
    conn.execute(
        update(ENDPOINTS)
        .where(ENDPOINTS.c.id == endpoint_id, ENDPOINTS.c.disabled_at.is_(None))
        .values(disabled_at=datetime.now(UTC))
    )
    conn.execute(
        update(DELIVERIES)
        .where(DELIVERIES.c.endpoint_id == endpoint_id, DELIVERIES.c.status == "pending")
        .values(status="canceled", claim=None)
    )
    return True


def _delivery_columns() -> Any:
    return select(
        DELIVERIES.c.id,
        DELIVERIES.c.event_id,
        EVENTS.c.type,
        DELIVERIES.c.endpoint_id,
        DELIVERIES.c.status,
        DELIVERIES.c.attempts,
        DELIVERIES.c.next_attempt_at,
        DELIVERIES.c.give_up_at,
        DELIVERIES.c.last_status,
        DELIVERIES.c.last_error,
        DELIVERIES.c.delivered_at,
    ).join_from(DELIVERIES, EVENTS, DELIVERIES.c.event_id == EVENTS.c.id)


def list_deliveries(
    conn: SqlConnection,
    *,
    endpoint_id: int | None = None,
    status: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[DeliveryRow]:
    """The delivery log, newest first (``before_id`` pages on)."""
    if status is not None and status not in DELIVERY_STATUSES:
        raise EndpointError(f"unknown delivery status {status!r} (one of {', '.join(DELIVERY_STATUSES)})")
    query = _delivery_columns().order_by(DELIVERIES.c.id.desc()).limit(max(1, min(limit, 1000)))
    if endpoint_id is not None:
        query = query.where(DELIVERIES.c.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(DELIVERIES.c.status == status)
    if before_id is not None:
        query = query.where(DELIVERIES.c.id < before_id)
    return [DeliveryRow(*row) for row in conn.execute(query).all()]


def load_delivery(conn: SqlConnection, delivery_id: int) -> DeliveryRow | None:
    row = conn.execute(_delivery_columns().where(DELIVERIES.c.id == delivery_id)).first()
    return None if row is None else DeliveryRow(*row)


def delivery_attempts(conn: SqlConnection, delivery_id: int) -> list[AttemptRow]:
    """Every HTTP attempt of one delivery, oldest first."""
    rows = conn.execute(
        select(
            ATTEMPTS.c.id,
            ATTEMPTS.c.attempted_at,
            ATTEMPTS.c.status,
            ATTEMPTS.c.error,
            ATTEMPTS.c.duration_ms,
        )
        .where(ATTEMPTS.c.delivery_id == delivery_id)
        .order_by(ATTEMPTS.c.id)
    ).all()
    return [AttemptRow(*row) for row in rows]


def redeliver(
    conn: SqlConnection, delivery_id: int, *, now: int, window: int = RETRY_WINDOW
) -> DeliveryRow | None:
    """Send a delivery again as soon as a deliverer looks, whatever its state, with a fresh day of retries.

    None when there is no such delivery; :class:`EndpointError` when its endpoint was removed.
    A delivered one is sent again too (the host lost it): hosts must expect duplicates anyway.
    """
    found = conn.execute(
        select(DELIVERIES.c.id, ENDPOINTS.c.disabled_at)
        .join_from(DELIVERIES, ENDPOINTS, DELIVERIES.c.endpoint_id == ENDPOINTS.c.id)
        .where(DELIVERIES.c.id == delivery_id)
    ).first()
    if found is None:
        return None
    if found[1] is not None:
        raise EndpointError(f"delivery {delivery_id}'s endpoint was removed: nothing is sent to it any more")
    conn.execute(
        update(DELIVERIES)
        .where(DELIVERIES.c.id == delivery_id)
        .values(status="pending", attempts=0, next_attempt_at=now, give_up_at=now + window, claim=None)
    )
    return load_delivery(conn, delivery_id)


def purge_settled(conn: SqlConnection, *, now: int, keep_days: int = KEEP_DAYS, limit: int = 1000) -> int:
    """Delete up to ``limit`` events older than ``keep_days`` that nothing waits on any more.

    An event goes with its deliveries and their attempts (the foreign keys cascade) once it was
    fanned out and none of its deliveries is still pending; the tables would otherwise grow by
    one row per event per endpoint for ever. Returns how many events went.
    """
    pending = select(DELIVERIES.c.id).where(
        DELIVERIES.c.event_id == EVENTS.c.id, DELIVERIES.c.status == "pending"
    )
    old = (
        select(EVENTS.c.id)
        .where(EVENTS.c.created < now - keep_days * 86_400, EVENTS.c.fanned_out.is_(True), ~pending.exists())
        .order_by(EVENTS.c.created)
        .limit(limit)
    )
    ids = [row[0] for row in conn.execute(old).all()]
    if not ids:
        return 0
    delivery_ids = select(DELIVERIES.c.id).where(DELIVERIES.c.event_id.in_(ids)).scalar_subquery()
    conn.execute(delete(ATTEMPTS).where(ATTEMPTS.c.delivery_id.in_(delivery_ids)))
    conn.execute(delete(DELIVERIES).where(DELIVERIES.c.event_id.in_(ids)))
    conn.execute(delete(EVENTS).where(EVENTS.c.id.in_(ids)))
    return len(ids)
