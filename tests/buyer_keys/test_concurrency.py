"""The cap holds under concurrency: 100 verifies at once against a cap of 10 let exactly 10 through."""

from __future__ import annotations

import asyncio

import pytest

from app.buyer_keys.service import Code, Verdict, create_key, list_keys, verify_and_charge
from app.db.sql import run
from tests.buyer_keys.support import ASSET, Sessions, make_buyer, spend_entries, spendable

pytestmark = pytest.mark.anyio

CALLS = 100


async def _verify(sessions: Sessions, key: str, start: asyncio.Event) -> Verdict:
    await start.wait()
    async with sessions() as db, db.begin():
        verdict: Verdict = await run(db, verify_and_charge, key=key, cost=1)
    return verdict


async def test_a_cap_of_10_lets_exactly_10_of_100_concurrent_calls_through(sessions: Sessions) -> None:
    user = await make_buyer(sessions, 1000)
    async with sessions() as db, db.begin():
        made = await run(
            db, create_key, user_id=user.id, asset=ASSET, name="busy", cap_units=10, cap_period="day"
        )
    start = asyncio.Event()
    tasks = [asyncio.create_task(_verify(sessions, made.secret, start)) for _ in range(CALLS)]
    start.set()
    verdicts = await asyncio.gather(*tasks)
    assert sum(v.valid for v in verdicts) == 10
    assert {v.code for v in verdicts if not v.valid} == {Code.KEY_CAP_REACHED}
    assert await spendable(sessions, user.id) == 990
    assert await spend_entries(sessions, user.id) == 10
    async with sessions() as db:
        [view] = await run(db, list_keys, user.id)
    assert (view.calls, view.used_units, view.used_this_period) == (10, 10, 10)


async def test_concurrent_calls_never_overdraw_the_balance(sessions: Sessions) -> None:
    user = await make_buyer(sessions, 7)
    async with sessions() as db, db.begin():
        made = await run(db, create_key, user_id=user.id, asset=ASSET, name="uncapped")
    start = asyncio.Event()
    tasks = [asyncio.create_task(_verify(sessions, made.secret, start)) for _ in range(30)]
    start.set()
    verdicts = await asyncio.gather(*tasks)
    assert sum(v.valid for v in verdicts) == 7
    assert {v.code for v in verdicts if not v.valid} == {Code.INSUFFICIENT_BALANCE}
    assert await spendable(sessions, user.id) == 0
