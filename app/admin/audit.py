"""Write audit rows in the caller's transaction.

``record`` is synchronous on a :class:`~app.db.sql.SqlConnection`, like the money core, so an
admin action runs its money change and its audit row in one operation: from a request,
``await run(db_session, record, ...)`` (``app.db.sql.run``) executes it on the request's own
transaction. It never commits; the request's transaction does, or rolls both back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgspec
from sqlalchemy import Table, insert

from app.admin.models import AuditEntry
from app.db.sql import SqlConnection
from app.i18n import gettext as _

__all__ = ("AUDIT", "REASON_MAX", "Subject", "reason_problem", "record")

AUDIT: Table = AuditEntry.__table__  # type: ignore[assignment]

Subject = tuple[str, str | int]
"""What an action concerned: ``("order", 42)``, ``("customer", 7)``, ``("event", "evt_...")``."""

_INSERT = insert(AUDIT)

REASON_MAX: Final = 500
"""The longest reason an admin action takes (the same for every action; the column holds more)."""


def reason_problem(reason: str) -> str | None:
    """What is wrong with an action's (stripped) reason, in the admin's language; None if nothing."""
    if not reason:
        return _("Please say why.")
    if len(reason) > REASON_MAX:
        return _("Please keep the reason under %(n)s characters.") % {"n": REASON_MAX}
    return None


def _as_json(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else msgspec.json.encode(dict(value)).decode()


def record(
    conn: SqlConnection,
    actor_id: int,
    action: str,
    subject: Subject,
    reason: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
) -> None:
    """Append one audit row (who, what, which subject, why, before and after as JSON)."""
    kind, ident = subject
    conn.execute(
        _INSERT,
        {
            "actor_id": actor_id,
            "action": action,
            "subject_type": kind,
            "subject_id": str(ident),
            "reason": reason,
            "before_json": _as_json(before),
            "after_json": _as_json(after),
        },
    )
