"""The store of Stripe events: each stored once under its id, with what its effect did.

An event whose order is not credited yet (a refund or dispute that came first) is kept with
``pending_payment_intent_id`` set; ``app.money.reversals.replay_pending`` applies it when the
order is credited.

An event whose effect failed on its data keeps the outcome ``failed: <error>`` until an
operator replays it (``storefront events``): :func:`failed_events` lists those.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Table, bindparam

from app.db.sql import SqlConnection, dialect_insert
from app.money.models import StripeEvent

__all__ = (
    "EVENTS",
    "FAILED_PREFIX",
    "failed_events",
    "set_outcome",
    "store_event",
    "stored_event",
    "waiting_for",
)

FAILED_PREFIX = "failed: "
"""How the outcome of an event whose effect failed on its data begins."""

EVENTS = cast(Table, StripeEvent.__table__)


@lru_cache(maxsize=4)
def _statements(dialect: str) -> dict[str, Any]:
    """Built once per dialect (for ON CONFLICT)."""
    return {
        "store": dialect_insert(dialect, EVENTS)
        .values(
            id=bindparam("id"),
            type=bindparam("type"),
            created=bindparam("created"),
            source=bindparam("source"),
            outcome="",
            payload=bindparam("payload"),
        )
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(EVENTS.c.id),
        "outcome": EVENTS.update()
        .where(EVENTS.c.id == bindparam("eid"))
        .values(outcome=bindparam("outcome"), pending_payment_intent_id=bindparam("pending")),
        "waiting": EVENTS.select()
        .with_only_columns(EVENTS.c.id, EVENTS.c.type, EVENTS.c.payload)
        .where(EVENTS.c.pending_payment_intent_id == bindparam("pi"))
        .order_by(EVENTS.c.created, EVENTS.c.received_at, EVENTS.c.id),
        "failed": EVENTS.select()
        .with_only_columns(EVENTS.c.id, EVENTS.c.type, EVENTS.c.created, EVENTS.c.outcome)
        .where(EVENTS.c.outcome.startswith(FAILED_PREFIX, autoescape=True))
        .order_by(EVENTS.c.created, EVENTS.c.id)
        .limit(bindparam("limit")),
        "one": EVENTS.select()
        .with_only_columns(EVENTS.c.type, EVENTS.c.payload)
        .where(EVENTS.c.id == bindparam("eid")),
    }


def store_event(
    conn: SqlConnection, *, event_id: str, event_type: str, created: int, source: str, payload: str
) -> bool:
    """Store an event once; False when its id was stored before (a redelivery)."""
    stored = conn.execute(
        _statements(conn.dialect.name)["store"],
        {"id": event_id, "type": event_type, "created": created, "source": source[:16], "payload": payload},
    ).first()
    return stored is not None


def set_outcome(conn: SqlConnection, event_id: str, outcome: str, pending: str | None = None) -> None:
    """Record what the event's effect did (and whether it still waits for a payment intent)."""
    conn.execute(
        _statements(conn.dialect.name)["outcome"],
        {"eid": event_id, "outcome": outcome[:200], "pending": pending},
    )


def waiting_for(conn: SqlConnection, payment_intent_id: str) -> list[tuple[str, str, str]]:
    """(id, type, payload) of the events waiting for this payment intent's credit, oldest first."""
    rows = conn.execute(_statements(conn.dialect.name)["waiting"], {"pi": payment_intent_id})
    return [(event_id, event_type, payload) for event_id, event_type, payload in rows]


def failed_events(conn: SqlConnection, limit: int = 100) -> list[tuple[str, str, int, str]]:
    """(id, type, created, outcome) of the events whose effect failed on their data, oldest first."""
    rows = conn.execute(_statements(conn.dialect.name)["failed"], {"limit": limit})
    return [(event_id, event_type, created, outcome) for event_id, event_type, created, outcome in rows]


def stored_event(conn: SqlConnection, event_id: str) -> tuple[str, str] | None:
    """(type, payload) of a stored event, or None."""
    row = conn.execute(_statements(conn.dialect.name)["one"], {"eid": event_id}).first()
    return None if row is None else (row[0], row[1])
