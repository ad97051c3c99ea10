"""process_event: every handler, duplicates, and arrivals in any order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.sql import run
from app.money.events import ProcessOutcome, process_event
from app.money.ledger import BalanceView, balances, check_invariant
from app.money.models import LedgerEntry, Order, OrderStatus, StripeEvent
from tests.webhooks.factories import (
    charge_refunded,
    checkout_session,
    dispute,
    event,
    make_order,
    make_user,
    refund,
)

pytestmark = pytest.mark.anyio

Sessions = async_sessionmaker[AsyncSession]


async def _order(sessions: Sessions, **kwargs: Any) -> Order:
    async with sessions() as db, db.begin():
        return await make_order(db, await make_user(db), **kwargs)


async def _send(sessions: Sessions, ev: dict[str, Any]) -> ProcessOutcome:
    async with sessions() as db, db.begin():
        return await run(db, process_event, ev)


async def _paid(sessions: Sessions, order: Order) -> None:
    outcome = await _send(sessions, event("checkout.session.completed", checkout_session(order)))
    assert outcome.outcome.startswith("credited")


async def _balance(sessions: Sessions, order: Order) -> BalanceView:
    async with sessions() as db:
        assert await run(db, check_invariant) == []
        return (await run(db, balances, order.user_id)).get("coins", BalanceView(0, 0))


async def _status(sessions: Sessions, order: Order) -> str:
    async with sessions() as db:
        status = await db.scalar(select(Order.status).where(Order.id == order.id))
        assert status is not None
        return status


async def test_completed_paid_credits_and_duplicate_delivery_is_a_no_op(sessions: Sessions) -> None:
    order = await _order(sessions)
    ev = event("checkout.session.completed", checkout_session(order))
    first = await _send(sessions, ev)
    second = await _send(sessions, ev)
    assert first.outcome == f"credited order {order.id}"
    assert not first.duplicate
    assert second.duplicate
    assert second.outcome == "duplicate"
    assert await _balance(sessions, order) == BalanceView(1100, 0)
    async with sessions() as db:
        row = await db.get(StripeEvent, ev["id"])
        assert row is not None
        assert row.outcome == first.outcome
        assert row.source == "webhook"


async def test_same_session_in_two_events_credits_once(sessions: Sessions) -> None:
    order = await _order(sessions)
    await _paid(sessions, order)
    again = await _send(sessions, event("checkout.session.completed", checkout_session(order)))
    assert again.outcome.startswith("already_credited")
    assert await _balance(sessions, order) == BalanceView(1100, 0)


async def test_delayed_payment_then_success(sessions: Sessions) -> None:
    order = await _order(sessions)
    unpaid = await _send(
        sessions, event("checkout.session.completed", checkout_session(order, payment_status="unpaid"))
    )
    assert unpaid.outcome.startswith("awaiting_payment")
    assert await _status(sessions, order) == OrderStatus.AWAITING_PAYMENT
    ok = await _send(sessions, event("checkout.session.async_payment_succeeded", checkout_session(order)))
    assert ok.outcome.startswith("credited")
    assert await _status(sessions, order) == OrderStatus.PAID
    assert await _balance(sessions, order) == BalanceView(1100, 0)


async def test_delayed_payment_failure(sessions: Sessions) -> None:
    order = await _order(sessions)
    await _send(
        sessions, event("checkout.session.completed", checkout_session(order, payment_status="unpaid"))
    )
    failed = await _send(
        sessions,
        event("checkout.session.async_payment_failed", checkout_session(order, payment_status="unpaid")),
    )
    assert failed.outcome.startswith("failed")
    assert await _status(sessions, order) == OrderStatus.FAILED
    assert await _balance(sessions, order) == BalanceView(0, 0)


async def test_expired_session(sessions: Sessions) -> None:
    order = await _order(sessions)
    out = await _send(
        sessions,
        event("checkout.session.expired", checkout_session(order, payment_status="unpaid", status="expired")),
    )
    assert out.outcome.startswith("expired")
    assert await _status(sessions, order) == OrderStatus.EXPIRED


async def test_expired_after_paid_stays_paid(sessions: Sessions) -> None:
    order = await _order(sessions)
    await _paid(sessions, order)
    out = await _send(sessions, event("checkout.session.expired", checkout_session(order, status="expired")))
    assert out.outcome.startswith("unchanged paid")
    failed = await _send(sessions, event("checkout.session.async_payment_failed", checkout_session(order)))
    assert failed.outcome.startswith("unchanged paid")
    assert await _status(sessions, order) == OrderStatus.PAID
    assert await _balance(sessions, order) == BalanceView(1100, 0)


async def test_mismatched_amount_needs_review(sessions: Sessions) -> None:
    order = await _order(sessions)
    out = await _send(sessions, event("checkout.session.completed", checkout_session(order, amount=1)))
    assert out.outcome.startswith("needs_review")
    assert await _status(sessions, order) == OrderStatus.NEEDS_REVIEW
    assert await _balance(sessions, order) == BalanceView(0, 0)


async def test_unknown_order_and_unknown_type_are_stored(sessions: Sessions) -> None:
    out = await _send(
        sessions,
        event("checkout.session.completed", {"id": "cs_x", "payment_status": "paid", "status": "complete"}),
    )
    assert out.outcome == "unknown_order"
    odd = await _send(sessions, event("customer.created", {"id": "cus_1"}))
    assert odd.outcome == "ignored"
    async with sessions() as db:
        assert await db.scalar(select(func.count()).select_from(StripeEvent)) == 2


async def test_full_refund_takes_back_everything_once_from_both_event_kinds(sessions: Sessions) -> None:
    order = await _order(sessions)
    await _paid(sessions, order)
    re = refund(order, 999)
    await _send(sessions, event("refund.created", re))
    await _send(sessions, event("charge.refunded", charge_refunded(order, [re], 999)))
    await _send(sessions, event("refund.updated", re))
    assert await _balance(sessions, order) == BalanceView(0, 0)


async def test_charge_refunded_without_refund_ids_then_refund_created(sessions: Sessions) -> None:
    order = await _order(sessions)
    await _paid(sessions, order)
    first = refund(order, 333)
    await _send(sessions, event("charge.refunded", charge_refunded(order, None, 333)))
    assert await _balance(sessions, order) == BalanceView(1100 - 366, 0)
    await _send(sessions, event("refund.created", first))  # the same refund, now by id: nothing more
    assert await _balance(sessions, order) == BalanceView(1100 - 366, 0)
    second = refund(order, 666)
    await _send(sessions, event("refund.created", second))
    await _send(sessions, event("charge.refunded", charge_refunded(order, None, 999)))
    assert await _balance(sessions, order) == BalanceView(0, 0)


async def test_partial_refunds_adding_up_to_the_whole_take_back_exactly_all(sessions: Sessions) -> None:
    order = await _order(sessions, units=1000, bonus=1, amount=999)
    await _paid(sessions, order)
    for amount in (1, 1, 997):
        await _send(sessions, event("refund.created", refund(order, amount)))
    assert await _balance(sessions, order) == BalanceView(0, 0)


async def test_pending_refund_is_ignored_until_it_succeeds(sessions: Sessions) -> None:
    order = await _order(sessions)
    await _paid(sessions, order)
    re = refund(order, 999, status="pending")
    out = await _send(sessions, event("refund.created", re))
    assert out.outcome.startswith("ignored")
    await _send(sessions, event("refund.updated", {**re, "status": "succeeded"}))
    assert await _balance(sessions, order) == BalanceView(0, 0)


async def test_refund_before_completion_is_applied_after_the_credit(sessions: Sessions) -> None:
    order = await _order(sessions)
    early = await _send(sessions, event("refund.created", refund(order, 500)))
    assert early.outcome.startswith("pending")
    assert await _balance(sessions, order) == BalanceView(0, 0)
    await _paid(sessions, order)
    # 1100 * 500 // 999 = 550 taken back, in the crediting transaction
    assert await _balance(sessions, order) == BalanceView(550, 0)
    async with sessions() as db:
        kinds = (await db.scalars(select(LedgerEntry.kind).order_by(LedgerEntry.id))).all()
        assert kinds == ["purchase", "refund"]
        pending = await db.scalar(
            select(func.count())
            .select_from(StripeEvent)
            .where(StripeEvent.pending_payment_intent_id.is_not(None))
        )
        assert pending == 0


async def test_dispute_lost_keeps_units_removed(sessions: Sessions) -> None:
    order = await _order(sessions)
    await _paid(sessions, order)
    await _send(sessions, event("charge.dispute.created", dispute(order, dispute_id="du_1")))
    assert await _balance(sessions, order) == BalanceView(0, 1100)
    await _send(sessions, event("charge.dispute.closed", dispute(order, dispute_id="du_1", status="lost")))
    assert await _balance(sessions, order) == BalanceView(0, 0)


async def test_dispute_won_and_funds_reinstated_release_once(sessions: Sessions) -> None:
    order = await _order(sessions)
    await _paid(sessions, order)
    await _send(sessions, event("charge.dispute.created", dispute(order, dispute_id="du_2")))
    await _send(
        sessions, event("charge.dispute.funds_reinstated", dispute(order, dispute_id="du_2", status="won"))
    )
    await _send(sessions, event("charge.dispute.closed", dispute(order, dispute_id="du_2", status="won")))
    assert await _balance(sessions, order) == BalanceView(1100, 0)


async def test_dispute_close_before_created_pairs_up(sessions: Sessions) -> None:
    order = await _order(sessions)
    await _paid(sessions, order)
    await _send(sessions, event("charge.dispute.closed", dispute(order, dispute_id="du_3", status="lost")))
    await _send(sessions, event("charge.dispute.created", dispute(order, dispute_id="du_3")))
    assert await _balance(sessions, order) == BalanceView(0, 0)


async def test_dispute_before_completion_is_held_after_the_credit(sessions: Sessions) -> None:
    order = await _order(sessions)
    early = await _send(sessions, event("charge.dispute.created", dispute(order, dispute_id="du_4")))
    assert early.outcome.startswith("pending")
    await _paid(sessions, order)
    assert await _balance(sessions, order) == BalanceView(0, 1100)


async def test_failing_effect_rolls_back_the_event(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.money.events as processing

    def boom(*_: object) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setitem(processing.HANDLERS, "checkout.session.completed", boom)
    order = await _order(sessions)
    ev = event("checkout.session.completed", checkout_session(order))
    with pytest.raises(RuntimeError):
        await _send(sessions, ev)
    async with sessions() as db:
        assert await db.get(StripeEvent, ev["id"]) is None


@pytest.mark.parametrize("kind", ["refund", "dispute"])
async def test_refund_or_dispute_racing_the_completion_is_not_left_pending(
    sessions: Sessions, kind: str
) -> None:
    """The refund's transaction finds the order uncredited and stores the event as pending, but
    commits only after the completion's transaction looked for pending events: neither sees the
    other unless the database serialises them, and the take-back would wait forever."""
    order = await _order(sessions)
    early_event = (
        event("refund.created", refund(order, 999))
        if kind == "refund"
        else event("charge.dispute.created", dispute(order, dispute_id="du_race"))
    )
    async with sessions() as db:
        async with db.begin():
            early = await run(db, process_event, early_event)
            assert early.outcome.startswith("pending")
            completion = asyncio.create_task(_paid(sessions, order))
            await asyncio.sleep(0.5)  # the completion runs (or waits for us) meanwhile
        await asyncio.wait_for(completion, 30)
    expected = BalanceView(0, 0) if kind == "refund" else BalanceView(0, 1100)
    assert await _balance(sessions, order) == expected
    async with sessions() as db:
        waiting = await db.scalar(
            select(func.count())
            .select_from(StripeEvent)
            .where(StripeEvent.pending_payment_intent_id.is_not(None))
        )
        assert waiting == 0


@pytest.mark.parametrize("error", [KeyError("amount"), IndexError("list index out of range")])
async def test_a_lookup_error_in_an_effect_rolls_back_too(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    """Only "this event is not about a payment of ours" is acknowledged; a KeyError or
    IndexError from the effect is a failure like any other: rolled back, so Stripe retries."""
    import app.money.events as processing

    def broken(*_: object) -> None:
        raise error

    monkeypatch.setitem(processing.HANDLERS, "refund.created", broken)
    order = await _order(sessions)
    await _paid(sessions, order)
    ev = event("refund.created", refund(order, 999))
    with pytest.raises(type(error)):
        await _send(sessions, ev)
    async with sessions() as db:
        assert await db.get(StripeEvent, ev["id"]) is None


async def test_refund_without_a_payment_intent_is_acknowledged(sessions: Sessions) -> None:
    order = await _order(sessions)
    await _paid(sessions, order)
    out = await _send(sessions, event("refund.created", {**refund(order, 999), "payment_intent": None}))
    assert out.outcome == "ignored: no payment intent"
    assert await _balance(sessions, order) == BalanceView(1100, 0)
