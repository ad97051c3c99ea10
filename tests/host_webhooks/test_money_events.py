"""The money core's own events reach a host: credit, spend below a threshold, spend to nothing."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db.sql import run
from app.host_webhooks.delivery import Deliverer
from app.money.credits import Insufficient, credit, debit
from app.money.models import LotKind
from tests.host_webhooks.conftest import endpoint
from tests.host_webhooks.receiver import Receiver
from tests.webhooks.factories import make_user

pytestmark = pytest.mark.anyio


async def test_balance_events_of_the_money_core_are_delivered_verified(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], receiver: tuple[Receiver, str]
) -> None:
    app, base = receiver
    await endpoint(engine, app, base + "/hooks")
    async with sessions() as db, db.begin():
        user = await make_user(db)
        await run(
            db,
            credit,
            user_id=user.id,
            asset="coins",
            units=100,
            kind="grant",
            lot_kind=LotKind.PROMOTIONAL,
            key="grant:1",
            reason="welcome",
        )
    async with sessions() as db, db.begin():
        await run(db, debit, user_id=user.id, asset="coins", units=95, key="d:1", low_threshold=10)
    with pytest.raises(Insufficient):
        async with sessions() as db, db.begin():  # refused: nothing changed, nothing to tell
            await run(db, debit, user_id=user.id, asset="coins", units=50, key="d:2")
    async with sessions() as db, db.begin():
        await run(db, debit, user_id=user.id, asset="coins", units=5, key="d:3")

    deliverer = Deliverer(engine)
    try:
        assert await deliverer.run_once() == 3
    finally:
        await deliverer.aclose()
    assert app.rejected() == []
    events = sorted(app.verified(), key=lambda e: e["data"]["entry"]["id"])
    assert [e["type"] for e in events] == ["balance.credited", "balance.low", "balance.depleted"]
    credited, low, depleted = (e["data"] for e in events)
    assert credited["customer"] == {"id": user.id, "external_id": None}
    assert (credited["asset"], credited["units"], credited["balance"]) == ("coins", 100, 100)
    assert (low["units"], low["balance"], low["threshold"]) == (-95, 5, 10)
    assert (depleted["units"], depleted["balance"], depleted["debt"]) == (-5, 0, 0)
