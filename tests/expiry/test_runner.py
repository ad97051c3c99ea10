"""The background sweep posts expiries nobody else met, and leaves a quiet database alone."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.group_commit import PostgresWriter
from app.db.sql import run
from app.expiry.runner import sweep_once
from app.money.credits import credit, customer_balances
from app.money.models import LedgerEntry, LotKind
from tests.support.writers import RecordingWriter, recording_writer
from tests.webhooks.factories import make_user

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("through_writer", [False, True], ids=["own-transaction", "money-writer"])
async def test_sweep_once_expires_an_untouched_lot(
    sessions: async_sessionmaker[AsyncSession], through_writer: bool
) -> None:
    """On SQLite the app's sweeper writes through the money writer (``background_writer``)."""
    engine = sessions.kw["bind"]
    writer = None
    if through_writer:
        writer = (
            recording_writer(engine.url.render_as_string(hide_password=False))
            if engine.dialect.name == "sqlite"
            else RecordingWriter(PostgresWriter(engine))
        )
    assert await sweep_once(engine, writer) == 0
    async with sessions() as db, db.begin():
        user = await make_user(db)
        await run(
            db,
            credit,
            user_id=user.id,
            asset="coins",
            units=9,
            kind="grant",
            lot_kind=LotKind.PROMOTIONAL,
            key="g",
            expires_at=int(time.time()) - 1,
        )
    assert await sweep_once(engine, writer) == 1
    assert await sweep_once(engine, writer) == 0
    if writer is not None:
        assert writer.background == ["sweep"]
        await writer.close()
    async with sessions() as db:
        assert (await run(db, customer_balances, user.id))["coins"].available == 0
        kinds = list(await db.scalars(select(LedgerEntry.kind).where(LedgerEntry.user_id == user.id)))
        assert sorted(kinds) == ["expiry", "grant"]
        assert await db.scalar(select(func.count()).select_from(LedgerEntry)) == 2
