"""The audit log: ``record`` writes in the caller's transaction, and the table refuses changes."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.admin.audit import record
from app.admin.models import AuditEntry
from app.db.config import make_engine
from app.db.sql import run
from app.settings import Settings
from tests.admin.support import ADMIN_EMAIL, make_user


def _go(settings: Settings, work: Any) -> Any:
    async def main() -> Any:
        engine = make_engine(settings)
        try:
            return await work(async_sessionmaker(engine, expire_on_commit=False))
        finally:
            await engine.dispose()

    return asyncio.run(main())


_COPY = (
    "INSERT{verb} INTO audit_log (id, actor_id, action, subject_type, subject_id, reason) "
    "SELECT id, actor_id, 'forged', subject_type, subject_id, 'rewritten' FROM audit_log"
)
_OVERWRITE = {
    "sqlite": _COPY.format(verb=" OR REPLACE"),  # REPLACE's delete fires no DELETE trigger
    "postgresql": _COPY.format(verb="") + " ON CONFLICT (id) DO UPDATE SET reason = excluded.reason",
}


def test_record_writes_in_the_callers_transaction_and_rows_never_change(settings: Settings) -> None:
    actor = make_user(settings, ADMIN_EMAIL, is_admin=True)

    async def work(sessions: Any) -> None:
        async with sessions() as db:
            await run(db, record, actor, "order.refund", ("order", 7), "asked", {"a": 1}, None)
            await db.rollback()  # the caller's transaction decides: nothing stays
        async with sessions() as db:
            assert (await db.scalars(select(AuditEntry))).all() == []
        async with sessions() as db, db.begin():
            await run(db, record, actor, "order.refund", ("order", 7), "asked", {"a": 1}, {"a": 0})
        async with sessions() as db:
            row = (await db.scalars(select(AuditEntry))).one()
            assert (row.actor_id, row.action, row.subject_type, row.subject_id, row.reason) == (
                actor,
                "order.refund",
                "order",
                "7",
                "asked",
            )
            assert msgspec.json.decode(row.before_json or "") == {"a": 1}
            assert msgspec.json.decode(row.after_json or "") == {"a": 0}
        async with sessions() as db:
            dialect = db.get_bind().dialect.name
        for change in (
            update(AuditEntry).values(reason="rewritten"),
            delete(AuditEntry),
            text("DELETE FROM audit_log"),
            text(_OVERWRITE[dialect]),  # an insert that reuses a row's id replaces (or updates) it
        ):
            with pytest.raises(DBAPIError, match="append-only"):
                async with sessions() as db, db.begin():
                    await db.execute(change)
        async with sessions() as db:
            assert (await db.scalars(select(AuditEntry.reason))).all() == ["asked"]

    _go(settings, work)
