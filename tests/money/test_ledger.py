"""The ledger: idempotent appends, balances, history pages and the invariant check."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.sql import run
from app.money.ledger import BalanceView, balances, check_invariant, entries, post_entry
from app.money.models import Balance, LedgerEntry
from tests.webhooks.factories import make_user

pytestmark = pytest.mark.anyio

Sessions = async_sessionmaker[AsyncSession]


async def test_post_entry_moves_balance_and_records_it(sessions: Sessions) -> None:
    async with sessions() as db, db.begin():
        user = await make_user(db)
        first = await run(
            db, post_entry, user_id=user.id, asset="coins", units=500, kind="purchase", idempotency_key="k1"
        )
        second = await run(
            db,
            post_entry,
            user_id=user.id,
            asset="coins",
            units=-200,
            held_units=150,
            kind="dispute_hold",
            idempotency_key="k2",
        )
    assert first is not None
    assert second is not None
    assert (first.balance_after, first.held_after) == (500, 0)
    assert (second.balance_after, second.held_after) == (300, 150)
    async with sessions() as db:
        assert await run(db, balances, user.id) == {"coins": BalanceView(available=300, held=150)}
        assert await run(db, check_invariant) == []


async def test_same_idempotency_key_counts_once(sessions: Sessions) -> None:
    async with sessions() as db, db.begin():
        user = await make_user(db)
        assert await run(
            db, post_entry, user_id=user.id, asset="coins", units=10, kind="purchase", idempotency_key="x"
        )
    async with sessions() as db, db.begin():
        again = await run(
            db, post_entry, user_id=user.id, asset="coins", units=99, kind="purchase", idempotency_key="x"
        )
    assert again is None
    async with sessions() as db:
        assert (await run(db, balances, user.id))["coins"].available == 10
        assert await db.scalar(select(func.count()).select_from(LedgerEntry)) == 1


async def test_assets_are_separate_and_balance_may_go_negative(sessions: Sessions) -> None:
    async with sessions() as db, db.begin():
        user = await make_user(db)
        await run(
            db, post_entry, user_id=user.id, asset="coins", units=5, kind="purchase", idempotency_key="a"
        )
        await run(
            db, post_entry, user_id=user.id, asset="coins", units=-8, kind="refund", idempotency_key="b"
        )
        await run(
            db,
            post_entry,
            user_id=user.id,
            asset="api_calls",
            units=1000,
            kind="purchase",
            idempotency_key="c",
        )
    async with sessions() as db:
        assert await run(db, balances, user.id) == {
            "api_calls": BalanceView(available=1000, held=0),
            "coins": BalanceView(available=-3, held=0),
        }


async def test_entries_newest_first_with_pages(sessions: Sessions) -> None:
    async with sessions() as db, db.begin():
        user = await make_user(db)
        other = await make_user(db)
        for i in range(5):
            await run(
                db,
                post_entry,
                user_id=user.id,
                asset="coins",
                units=i + 1,
                kind="purchase",
                idempotency_key=f"e{i}",
            )
        await run(
            db, post_entry, user_id=other.id, asset="coins", units=7, kind="purchase", idempotency_key="other"
        )
    async with sessions() as db:
        page = await run(db, entries, user.id, limit=3)
        assert [e.units for e in page] == [5, 4, 3]
        rest = await run(db, entries, user.id, limit=3, before_id=page[-1].id)
        assert [e.units for e in rest] == [2, 1]


async def test_invariant_reports_a_balance_that_drifted(sessions: Sessions) -> None:
    async with sessions() as db, db.begin():
        user = await make_user(db)
        await run(
            db, post_entry, user_id=user.id, asset="coins", units=5, kind="purchase", idempotency_key="a"
        )
    async with sessions() as db, db.begin():
        await db.execute(update(Balance).where(Balance.user_id == user.id).values(available=6))
    async with sessions() as db:
        problems = await run(db, check_invariant)
    assert len(problems) == 1
    assert f"user {user.id} coins" in problems[0]


async def test_concurrent_posts_with_one_key_credit_once(sessions: Sessions) -> None:
    async with sessions() as db, db.begin():
        user = await make_user(db)

    async def attempt() -> bool:
        async with sessions() as db, db.begin():
            entry = await run(
                db,
                post_entry,
                user_id=user.id,
                asset="coins",
                units=100,
                kind="purchase",
                idempotency_key="race",
            )
            return entry is not None

    async def other(i: int) -> None:
        async with sessions() as db, db.begin():
            await run(
                db, post_entry, user_id=user.id, asset="coins", units=1, kind="bonus", idempotency_key=f"o{i}"
            )

    results = await asyncio.gather(*(attempt() for _ in range(10)), *(other(i) for i in range(10)))
    assert sum(1 for r in results[:10] if r) == 1
    async with sessions() as db:
        assert (await run(db, balances, user.id))["coins"].available == 110
        assert await run(db, check_invariant) == []
