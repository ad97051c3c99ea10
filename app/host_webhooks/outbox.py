"""The outbox: a host event is a row written in the transaction of the ledger change it reports.

So an event exists exactly when its change committed; delivery (``app.host_webhooks.delivery``)
happens later, at least once. Event types are listed in :data:`EVENT_TYPES`.
"""

from __future__ import annotations

import secrets
import time
from functools import lru_cache
from typing import Any, Final, cast

import msgspec
from sqlalchemy import Table, bindparam, insert

from app.db.sql import SqlConnection
from app.host_webhooks.models import HostEvent

__all__ = ("EVENT_TYPES", "emit")

EVENT_TYPES: Final = (
    "balance.credited",
    "balance.reversed",
    "balance.low",
    "balance.depleted",
    "hold.expired",
)

EVENTS = cast(Table, HostEvent.__table__)


@lru_cache(maxsize=1)
def _insert() -> Any:
    return insert(EVENTS).values(
        id=bindparam("id"),
        type=bindparam("type"),
        user_id=bindparam("user_id"),
        payload=bindparam("payload"),
        created=bindparam("created"),
        fanned_out=bindparam("fanned_out"),
    )


def emit(conn: SqlConnection, event_type: str, *, user_id: int | None, data: dict[str, Any]) -> str:
    """Write one host event in the caller's transaction; returns its id (``evt_...``)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown host event type {event_type!r}")
    event_id = "evt_" + secrets.token_urlsafe(18)
    created = int(time.time())
    body = {"id": event_id, "type": event_type, "created": created, "data": data}
    conn.execute(
        _insert(),
        {
            "id": event_id,
            "type": event_type,
            "user_id": user_id,
            "payload": msgspec.json.encode(body).decode(),
            "created": created,
            "fanned_out": False,
        },
    )
    return event_id
