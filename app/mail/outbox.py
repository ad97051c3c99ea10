"""Queue a message in the caller's transaction: it exists exactly when its event committed.

The money path (a credit, a refund) and the account pages call :func:`enqueue` on the
connection of their own transaction; a rolled-back event leaves no message, and a message is
never sent for an event that did not happen. Sending is the worker's (``app.mail.worker``),
later, at least once: a webhook never waits for SMTP.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any, Final, Literal, cast

import msgspec
from sqlalchemy import Table, bindparam

from app.db.sql import SqlConnection, dialect_insert
from app.mail.models import MailMessage

__all__ = ("KINDS", "OUTBOX", "Kind", "enqueue")

Kind = Literal["receipt", "refund", "password_reset", "verify_email"]
KINDS: Final = ("receipt", "refund", "password_reset", "verify_email")
OUTBOX = cast(Table, MailMessage.__table__)


@lru_cache(maxsize=2)
def _insert(dialect: str) -> Any:
    """Compiled once per dialect: the money path's writers insert one of these per credit."""
    return (
        dialect_insert(dialect, OUTBOX)
        .values(
            kind=bindparam("kind"),
            user_id=bindparam("user_id"),
            dedupe_key=bindparam("dedupe_key"),
            data=bindparam("data"),
            secret=bindparam("secret"),
            status=bindparam("status"),
            attempts=bindparam("attempts"),
            next_attempt_at=bindparam("now"),
            created=bindparam("now"),
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
    )


def enqueue(
    conn: SqlConnection,
    kind: Kind,
    *,
    user_id: int,
    data: dict[str, Any],
    key: str | None = None,
    secret: bool = False,
) -> None:
    """Write one message for ``user_id``; a second one with the same ``key`` is not written.

    ``secret``: ``data`` holds a credential (a reset or verification token), emptied once sent.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown mail kind {kind!r}")
    conn.execute(
        _insert(conn.dialect.name),
        {
            "kind": kind,
            "user_id": user_id,
            "dedupe_key": key,
            "data": msgspec.json.encode(data).decode(),
            "secret": secret,
            "status": "pending",
            "attempts": 0,
            "now": int(time.time()),
        },
    )
