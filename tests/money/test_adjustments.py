"""Operator adjustments (app/money/adjustments.py): grants, removals that never overdraw."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.sql import run
from app.money.adjustments import KIND, AdjustmentRefused, adjust
from app.money.credits import check_credits, customer_balances
from app.money.ledger import check_invariant
from app.money.models import LedgerEntry
from app.settings import Settings
from tests.webhooks.factories import make_user, session_factory

pytestmark = pytest.mark.anyio

Sessions = async_sessionmaker[AsyncSession]
T0 = 1_800_000_000


async def _spendable(sessions: Sessions, user_id: int) -> int:
    async with sessions() as db, db.begin():
        assert await run(db, check_invariant) == []
        assert await run(db, check_credits) == []
        return (await run(db, customer_balances, user_id, now=T0))["coins"].available


async def test_grant_then_remove_are_adjustment_entries_with_their_reason(sessions: Sessions) -> None:
    async with sessions() as db, db.begin():
        user = await make_user(db)
        granted = await run(
            db, adjust, user_id=user.id, asset="coins", units=30, reason=" goodwill ", key="a1", actor_id=7
        )
        assert granted is not None
        assert (granted.balance_before, granted.balance_after) == (0, 30)
        # The same key again (a form sent twice) changes nothing.
        again = await run(db, adjust, user_id=user.id, asset="coins", units=30, reason="goodwill", key="a1")
        assert again is None
        removed = await run(
            db, adjust, user_id=user.id, asset="coins", units=-12, reason="abuse", key="a2", now=T0
        )
        assert removed is not None
        assert (removed.units, removed.balance_before, removed.balance_after) == (-12, 30, 18)
        rows = (await db.execute(select(LedgerEntry.kind, LedgerEntry.units, LedgerEntry.reason))).all()
        assert [tuple(row) for row in rows] == [(KIND, 30, "goodwill"), (KIND, -12, "abuse")]
    assert await _spendable(sessions, user.id) == 18


async def test_bad_adjustments_are_refused_and_change_nothing(sessions: Sessions) -> None:
    async with sessions() as db, db.begin():
        user = await make_user(db)
        await run(db, adjust, user_id=user.id, asset="coins", units=5, reason="start", key="s")
    for units, reason, message in (
        (-6, "too much", "cannot remove 6 coins: only 5 can be removed now"),
        (3, "   ", "a reason is required"),
        (0, "nothing", "adjust by 1 to"),
        (4, "x" * 501, "longer than 500"),
    ):
        async with sessions() as db:
            with pytest.raises(AdjustmentRefused, match=message):
                async with db.begin():
                    await run(db, adjust, user_id=user.id, asset="coins", units=units, reason=reason, key="k")
    assert await _spendable(sessions, user.id) == 5


async def test_concurrent_removals_never_overdraw(sqlite_settings: Settings) -> None:
    """Twenty removals of 3 race for 10 units: three win, the rest are refused, nothing below 0."""
    async with session_factory(sqlite_settings) as sessions:
        async with sessions() as db, db.begin():
            user = await make_user(db)
            await run(db, adjust, user_id=user.id, asset="coins", units=10, reason="start", key="s")

        async def remove(n: int) -> str:
            try:
                async with sessions() as db, db.begin():
                    done = await run(
                        db, adjust, user_id=user.id, asset="coins", units=-3, reason="race", key=f"r{n}"
                    )
            except AdjustmentRefused:
                return "refused"
            return "removed" if done is not None else "none"

        outcomes = await asyncio.gather(*(remove(n) for n in range(20)))
        assert sorted(outcomes).count("removed") == 3
        assert outcomes.count("refused") == 17
        assert await _spendable(sessions, user.id) == 1
        async with sessions() as db:
            lowest = await db.scalar(select(LedgerEntry.balance_after).order_by(LedgerEntry.balance_after))
            assert lowest == 1
