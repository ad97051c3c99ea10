"""fulfil_checkout: credits a paid session once, whoever calls it and however often."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.sql import run
from app.money.fulfilment import fulfil_checkout
from app.money.ledger import balances, check_invariant
from app.money.models import LedgerEntry, Order, OrderStatus
from app.money.orders import transition
from app.settings import Settings
from tests.webhooks.factories import checkout_session, make_order, make_user, pi_for, session_factory

pytestmark = pytest.mark.anyio

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[Sessions]:
    async with session_factory(settings) as factory:
        yield factory


async def _order(sessions: Sessions, **kwargs: object) -> Order:
    async with sessions() as db, db.begin():
        user = await make_user(db)
        return await make_order(db, user, **kwargs)  # type: ignore[arg-type]


async def _coins(sessions: Sessions, order: Order) -> int:
    async with sessions() as db:
        view = (await run(db, balances, order.user_id)).get("coins")
        return view.available if view else 0


async def _status(sessions: Sessions, order: Order) -> Order:
    async with sessions() as db:
        fresh = await db.get(Order, order.id)
        assert fresh is not None
        return fresh


async def test_paid_session_credits_units_and_bonus_once(sessions: Sessions) -> None:
    order = await _order(sessions)
    async with sessions() as db, db.begin():
        result = await run(db, fulfil_checkout, checkout_session(order))
    assert result.outcome == "credited"
    assert result.entry is not None
    assert result.entry.units == 1100
    async with sessions() as db, db.begin():
        again = await run(db, fulfil_checkout, checkout_session(order))
    assert again.outcome == "already_credited"
    assert await _coins(sessions, order) == 1100
    fresh = await _status(sessions, order)
    assert fresh.status == OrderStatus.PAID
    assert fresh.stripe_payment_intent_id == pi_for(order)
    assert fresh.fulfilled_at is not None


async def test_currency_compares_case_insensitively(sessions: Sessions) -> None:
    order = await _order(sessions, currency="eur")
    async with sessions() as db, db.begin():
        result = await run(db, fulfil_checkout, checkout_session(order, currency="EUR"))
    assert result.outcome == "credited"


async def test_unpaid_complete_session_awaits_payment(sessions: Sessions) -> None:
    order = await _order(sessions)
    async with sessions() as db, db.begin():
        result = await run(db, fulfil_checkout, checkout_session(order, payment_status="unpaid"))
    assert result.outcome == "awaiting_payment"
    assert await _coins(sessions, order) == 0
    assert (await _status(sessions, order)).status == OrderStatus.AWAITING_PAYMENT


async def test_open_session_is_not_paid(sessions: Sessions) -> None:
    order = await _order(sessions)
    async with sessions() as db, db.begin():
        result = await run(
            db, fulfil_checkout, checkout_session(order, payment_status="unpaid", status="open")
        )
    assert result.outcome == "not_paid"
    assert (await _status(sessions, order)).status == OrderStatus.OPEN


@pytest.mark.parametrize(("amount", "currency"), [(998, "usd"), (999, "eur")])
async def test_amount_or_currency_mismatch_needs_review(
    sessions: Sessions, amount: int, currency: str
) -> None:
    order = await _order(sessions)
    async with sessions() as db, db.begin():
        result = await run(db, fulfil_checkout, checkout_session(order, amount=amount, currency=currency))
    assert result.outcome == "needs_review"
    assert await _coins(sessions, order) == 0
    assert (await _status(sessions, order)).status == OrderStatus.NEEDS_REVIEW
    # a matching call afterwards does not credit what a human must look at
    async with sessions() as db, db.begin():
        assert (await run(db, fulfil_checkout, checkout_session(order))).outcome == "needs_review"
    assert await _coins(sessions, order) == 0


async def test_unknown_order(sessions: Sessions) -> None:
    async with sessions() as db, db.begin():
        result = await run(
            db,
            fulfil_checkout,
            {
                "id": "cs_nobody",
                "payment_status": "paid",
                "status": "complete",
                "metadata": {"order_id": "999"},
            },
        )
    assert result.outcome == "unknown_order"
    assert result.order is None


async def test_found_by_metadata_before_session_id_is_stored(sessions: Sessions) -> None:
    order = await _order(sessions, session_id="")
    async with sessions() as db, db.begin():
        await db.execute(Order.__table__.update().where(Order.id == order.id).values(stripe_session_id=None))
    async with sessions() as db, db.begin():
        result = await run(db, fulfil_checkout, checkout_session(order, session_id="cs_test_late"))
    assert result.outcome == "credited"
    assert (await _status(sessions, order)).stripe_session_id == "cs_test_late"


async def test_late_payment_after_local_cancel_is_credited(sessions: Sessions) -> None:
    order = await _order(sessions)
    async with sessions() as db, db.begin():
        assert await run(db, transition, order_id=order.id, to=OrderStatus.CANCELED, reason="buyer canceled")
    async with sessions() as db, db.begin():
        assert (await run(db, fulfil_checkout, checkout_session(order))).outcome == "credited"
    assert (await _status(sessions, order)).status == OrderStatus.PAID


async def test_state_never_moves_backwards(sessions: Sessions) -> None:
    order = await _order(sessions)
    async with sessions() as db, db.begin():
        await run(db, fulfil_checkout, checkout_session(order))
    async with sessions() as db, db.begin():
        for target in (OrderStatus.OPEN, OrderStatus.EXPIRED, OrderStatus.FAILED, OrderStatus.CANCELED):
            assert not await run(db, transition, order_id=order.id, to=target)
        assert not await run(
            db, transition, session_id=order.stripe_session_id, to=OrderStatus.AWAITING_PAYMENT
        )
    assert (await _status(sessions, order)).status == OrderStatus.PAID


async def test_fifty_concurrent_fulfilments_credit_once(sessions: Sessions) -> None:
    order = await _order(sessions)
    session_obj = checkout_session(order)

    async def call() -> str:
        async with sessions() as db, db.begin():
            return (await run(db, fulfil_checkout, session_obj)).outcome

    outcomes = await asyncio.gather(*(call() for _ in range(50)))
    assert outcomes.count("credited") == 1
    assert outcomes.count("already_credited") == 49
    assert await _coins(sessions, order) == 1100
    async with sessions() as db:
        count = await db.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.order_id == order.id)
        )
        assert count == 1
        assert await run(db, check_invariant) == []
