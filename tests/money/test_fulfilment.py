"""fulfil_checkout: credits a paid session once, whoever calls it and however often."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.sql import run
from app.money.events import process_event
from app.money.fulfilment import credit_order, fulfil_checkout
from app.money.ledger import balances, check_invariant
from app.money.models import LedgerEntry, Order, OrderStatus
from app.money.orders import leave_review, transition
from app.settings import Settings
from tests.webhooks.factories import checkout_session, event, make_order, make_user, pi_for, session_factory

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


async def test_a_mismatched_charge_is_recorded_so_a_credit_anyway_refunds_in_proportion(
    sessions: Sessions,
) -> None:
    """Regression: a reviewed order kept no amount_paid, so after an admin credited it anyway a
    full refund of what Stripe really charged (499 of a 999 snapshot) took back half the units."""
    order = await _order(sessions)
    cheaper = checkout_session(order, amount=order.amount // 2)
    cheaper["amount_subtotal"] = order.amount // 2  # e.g. a Price swapped for a cheaper one
    async with sessions() as db, db.begin():
        assert (await run(db, fulfil_checkout, cheaper)).outcome == "needs_review"
    reviewed = await _status(sessions, order)
    assert (reviewed.amount_paid, reviewed.amount_discount, reviewed.amount_tax) == (order.amount // 2, 0, 0)
    # An admin credits it anyway, then Stripe refunds the whole charge: every unit goes back.
    async with sessions() as db, db.begin():
        moved = await run(
            db,
            leave_review,
            order.id,
            OrderStatus.PAID,
            "credited by an admin",
            payment_intent_id=pi_for(order),
            fulfilled_at=datetime.now(UTC),
        )
        assert moved is not None
        assert (await run(db, credit_order, moved, cheaper["id"])) is not None
    assert await _coins(sessions, order) == order.units + order.bonus
    charge = {
        "id": "ch_test_review",
        "object": "charge",
        "payment_intent": pi_for(order),
        "amount_refunded": order.amount // 2,
        "refunds": {"object": "list", "data": []},
    }
    async with sessions() as db, db.begin():
        await db.execute(
            Order.__table__.update()
            .where(Order.id == order.id)
            .values(stripe_payment_intent_id=pi_for(order))
        )
        outcome = await run(db, process_event, event("charge.refunded", charge))
    assert outcome.outcome.startswith("refund applied"), outcome
    assert await _coins(sessions, order) == 0


async def test_a_charge_in_another_currency_records_nothing(sessions: Sessions) -> None:
    order = await _order(sessions)
    async with sessions() as db, db.begin():
        await run(db, fulfil_checkout, checkout_session(order, currency="eur"))
    assert (await _status(sessions, order)).amount_paid is None


async def test_nothing_to_pay_is_credited_only_for_a_total_of_zero(sessions: Sessions) -> None:
    order = await _order(sessions)
    charged = checkout_session(order, payment_status="no_payment_required")  # total 999: not free
    async with sessions() as db, db.begin():
        assert (await run(db, fulfil_checkout, charged)).outcome == "needs_review"
    assert await _coins(sessions, order) == 0
    free_order = await _order(sessions)
    free = checkout_session(free_order, payment_status="no_payment_required", amount=0)
    free["total_details"] = {"amount_discount": free_order.amount, "amount_tax": 0}
    free["payment_intent"] = None
    async with sessions() as db, db.begin():
        assert (await run(db, fulfil_checkout, free)).outcome == "credited"
    assert await _coins(sessions, free_order) == free_order.units + free_order.bonus


async def test_a_paid_session_of_an_order_under_review_keeps_its_charge_and_credits_nothing(
    sessions: Sessions,
) -> None:
    """The move to paid is refused (a human decides), yet what Stripe charged is kept for the
    review, as when the charge is recorded with the move (``transition(charge=...)``)."""
    order = await _order(sessions, status=OrderStatus.NEEDS_REVIEW)
    paid = checkout_session(order)
    async with sessions() as db, db.begin():
        result = await run(db, fulfil_checkout, paid)
    assert result.outcome == "needs_review"
    kept = await _status(sessions, order)
    assert kept.status == OrderStatus.NEEDS_REVIEW
    assert (kept.amount_paid, kept.amount_discount, kept.amount_tax) == (order.amount, 0, 0)
    assert await _coins(sessions, order) == 0
