"""The writers' batch (``process_batch``) on both databases, with known batches.

The webhook tests send events over HTTP and may or may not share a batch; these put chosen
events into one batch, as the SQLite writer thread and the PostgreSQL lanes do.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import app.money.events as events
from app.db.config import make_engine, sync_sqlite_engine
from app.db.sql import run
from app.db.writer import PostgresWriter, job, process_batch
from app.money.fulfilment import fulfil_checkout
from app.money.ledger import BalanceView, balances, check_invariant
from app.money.models import Order, StripeEvent
from app.settings import Settings
from app.webhooks.ingest import event_operation
from tests.webhooks.factories import checkout_session, event, make_order, make_user, refund

pytestmark = pytest.mark.anyio

Sessions = async_sessionmaker[AsyncSession]


async def _run_batch(settings: Settings, items: list[dict[str, Any]]) -> list[Any]:
    """One batch through ``process_batch`` on a connection of the app's kind; outcomes or errors."""
    jobs = [job(event_operation(item, json.dumps(item))) for item in items]
    engine = make_engine(settings)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(process_batch, jobs)
    finally:
        await engine.dispose()
    return [job.error if job.error is not None else job.outcome for job in jobs]


async def _order(sessions: Sessions, **kwargs: Any) -> Order:
    async with sessions() as db, db.begin():
        return await make_order(db, await make_user(db), **kwargs)


async def test_a_batch_with_a_duplicate_a_failure_and_one_order_twice(
    settings: Settings, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failing event alone rolls back; the rest commit once, in order, whatever shares the batch."""
    first, second = await _order(sessions), await _order(sessions)
    completed = event("checkout.session.completed", checkout_session(first))
    early_refund = event("refund.created", refund(second, 999))
    broken = event("charge.dispute.created", {"id": "du_x"})

    def boom(*_: object) -> None:
        raise RuntimeError("effect failed")

    monkeypatch.setitem(events.HANDLERS, "charge.dispute.created", boom)
    outcomes = await _run_batch(
        settings,
        [
            early_refund,
            completed,
            completed,  # the same event again in the same batch
            broken,
            event("checkout.session.completed", checkout_session(first)),  # same order, another event
            event("checkout.session.completed", checkout_session(second)),
        ],
    )
    assert outcomes[0].outcome.startswith("pending")
    assert outcomes[1].outcome == f"credited order {first.id}"
    assert outcomes[2].duplicate
    assert isinstance(outcomes[3], RuntimeError)
    assert outcomes[4].outcome == f"already_credited order {first.id}"
    assert outcomes[5].outcome == f"credited order {second.id}"
    async with sessions() as db:
        assert await run(db, balances, first.user_id) == {"coins": BalanceView(1100, 0)}
        assert await run(db, balances, second.user_id) == {"coins": BalanceView(0, 0)}  # refunded in full
        assert await run(db, check_invariant) == []
        stored = await db.scalar(select(func.count()).select_from(StripeEvent))
        assert stored == 4  # all but the duplicate and the failure
        assert await db.get(StripeEvent, broken["id"]) is None


async def test_a_completion_found_by_metadata_before_its_session_id_is_stored(
    settings: Settings, sessions: Sessions
) -> None:
    """The writer's own executor binds every column the claim sets (no default computed for it)."""
    order = await _order(sessions)
    async with sessions() as db, db.begin():
        await db.execute(Order.__table__.update().where(Order.id == order.id).values(stripe_session_id=None))
    (outcome,) = await _run_batch(
        settings, [event("checkout.session.completed", checkout_session(order, session_id="cs_test_late"))]
    )
    assert not isinstance(outcome, Exception), outcome
    assert outcome.outcome == f"credited order {order.id}"
    async with sessions() as db:
        row = await db.get(Order, order.id)
        assert row is not None
        assert row.stripe_session_id == "cs_test_late"
        assert row.updated_at is not None


async def test_sqlite_commits_are_durable(sqlite_settings: Settings) -> None:
    """synchronous=FULL on every connection: the app's and the webhook writer's."""
    engine = make_engine(sqlite_settings)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA synchronous"))).scalar() == 2  # FULL
    finally:
        await engine.dispose()
    writer = sync_sqlite_engine(sqlite_settings.database_url)
    with writer.connect() as conn:
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    writer.dispose()


SLEEP = text("SELECT pg_sleep(0.4)")


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_page_that_deadlocks_with_a_lane_gives_way_and_runs_again(
    settings: Settings, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lane's batch credits order A (locking the buyer's balance), then wants order B; the
    success page meanwhile locked B and wants the balance. PostgreSQL kills one of them: the
    page's operation runs again in its savepoint instead of answering the buyer 500. (SQLite has
    one writer at a time: no deadlock there.)"""

    def slow(conn: Any, _obj: Any) -> Any:
        conn.execute(SLEEP, {})
        return events.Effect("slept")

    monkeypatch.setitem(events.HANDLERS, "test.sleep", slow)
    async with sessions() as db, db.begin():
        buyer = await make_user(db)
        first, second = await make_order(db, buyer), await make_order(db, buyer)
    batch = [
        event("checkout.session.completed", checkout_session(first)),
        event("test.sleep", {}),
        event("checkout.session.completed", checkout_session(second)),
    ]

    async def page() -> str:
        await asyncio.sleep(0.2)  # the lane holds the balance by now, and sleeps
        async with sessions() as db, db.begin():
            return (await run(db, fulfil_checkout, checkout_session(second))).outcome

    lane_outcomes, page_outcome = await asyncio.gather(_run_batch(settings, batch), page())
    assert page_outcome in ("credited", "already_credited")
    assert not any(isinstance(outcome, Exception) for outcome in lane_outcomes), lane_outcomes
    async with sessions() as db:
        assert await run(db, balances, buyer.id) == {"coins": BalanceView(2200, 0)}
        assert await run(db, check_invariant) == []


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_closing_the_lanes_answers_every_waiting_request(
    settings: Settings, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shutdown never leaves a webhook request hanging: what could not finish answers 5xx."""

    def slow(conn: Any, _obj: Any) -> Any:
        conn.execute(text("SELECT pg_sleep(2)"), {})
        return events.Effect("slept")

    monkeypatch.setitem(events.HANDLERS, "test.sleep", slow)
    engine = make_engine(settings)
    writer = PostgresWriter(engine, lanes=1, max_batch=1)
    writer.close_wait = 0.2
    try:
        first, second = event("test.sleep", {}), event("test.sleep", {})
        busy = asyncio.create_task(writer.call(event_operation(first, json.dumps(first))))
        await asyncio.sleep(0.3)  # the lane is inside the first batch
        queued = asyncio.create_task(writer.call(event_operation(second, json.dumps(second))))
        await asyncio.sleep(0.05)
        await asyncio.wait_for(writer.close(), 10)
        for task in (busy, queued):
            with pytest.raises(RuntimeError):
                await asyncio.wait_for(task, 5)
        with pytest.raises(RuntimeError, match="closed"):
            await writer.call(event_operation(event("test.sleep", {}), "{}"))
    finally:
        await engine.dispose()
