"""Delivery to a real receiver over HTTP, on SQLite and PostgreSQL: signed, at least once, retried, logged."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.config import make_engine
from app.host_webhooks.delivery import (
    Backoff,
    Claimed,
    Deliverer,
    Outcome,
    claim,
    fan_out,
    record,
    share_slots,
)
from app.host_webhooks.outbox import emit
from app.host_webhooks.service import list_deliveries, redeliver, rotate_secret
from app.host_webhooks.signature import SignatureVerificationError, verify_signature
from app.settings import Settings
from tests.host_webhooks.conftest import emit_committed, endpoint, rows
from tests.host_webhooks.receiver import Receiver
from tests.support.servers import free_port, serve_in_thread

pytestmark = pytest.mark.anyio


class Clock:
    """The deliverer's idea of now, moved by the test instead of sleeping."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def test_a_committed_event_is_delivered_signed_and_a_rolled_back_one_never(
    engine: AsyncEngine, receiver: tuple[Receiver, str]
) -> None:
    app, base = receiver
    made = await endpoint(engine, app, base + "/hooks")
    committed = await emit_committed(engine, "balance.credited", units=500, available=1500)
    with pytest.raises(RuntimeError):
        await emit_then_fail(engine)

    deliverer = Deliverer(engine)
    try:
        assert await deliverer.run_once() == 1
        assert await deliverer.run_once() == 0
    finally:
        await deliverer.aclose()

    [call] = app.calls
    assert call.error is None
    assert call.event == {
        "id": committed,
        "type": "balance.credited",
        "created": call.event["created"],
        "data": {"asset": "coins", "units": 500, "available": 1500},
    }
    assert abs(call.event["created"] - time.time()) < 60
    assert call.headers["storefront-event-id"] == committed
    assert call.headers["storefront-event-type"] == "balance.credited"
    assert call.headers["content-type"] == "application/json"
    assert call.headers["storefront-signature"].startswith("t=")
    [delivery] = await rows(engine, "SELECT * FROM host_delivery")
    assert (delivery["event_id"], delivery["endpoint_id"], delivery["status"]) == (
        committed,
        made.id,
        "delivered",
    )
    assert (delivery["attempts"], delivery["last_status"], delivery["claim"]) == (1, 200, None)
    [attempt] = await rows(engine, "SELECT * FROM host_delivery_attempt")
    assert (attempt["delivery_id"], attempt["status"], attempt["error"]) == (delivery["id"], 200, None)
    assert attempt["duration_ms"] >= 0
    assert [r["id"] for r in await rows(engine, "SELECT id FROM host_event")] == [committed]


async def emit_then_fail(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: emit(c, "balance.low", user_id=7, data={"asset": "coins"}))
        raise RuntimeError("the money operation failed after emitting")


async def test_only_subscribed_endpoints_that_existed_at_fan_out_get_an_event(
    engine: AsyncEngine, receiver: tuple[Receiver, str]
) -> None:
    app, base = receiver
    await endpoint(engine, app, base + "/low", "balance.low,balance.depleted")
    low = await emit_committed(engine, "balance.low", available=3)
    await emit_committed(engine, "hold.expired", hold="hold_x")
    deliverer = Deliverer(engine)
    try:
        await deliverer.fan_out()
        await endpoint(engine, app, base + "/all", "*")  # after fan-out: older events are not sent to it
        await deliverer.run_once()
        assert [e["id"] for e in app.verified("/low")] == [low]
        assert app.verified("/all") == []
        later = await emit_committed(engine, "balance.depleted", available=0)
        await deliverer.run_once()
    finally:
        await deliverer.aclose()
    assert [e["id"] for e in app.verified("/low")] == [low, later]
    assert [e["id"] for e in app.verified("/all")] == [later]
    assert app.rejected() == []


async def test_a_failing_receiver_is_retried_on_the_schedule_until_it_answers(
    engine: AsyncEngine, receiver: tuple[Receiver, str]
) -> None:
    app, base = receiver
    app.fail_first = 2
    await endpoint(engine, app, base + "/hooks")
    event_id = await emit_committed(engine)
    clock = Clock()
    start = int(clock.now)
    deliverer = Deliverer(engine, clock=clock, backoff=Backoff(schedule=(10, 30, 120), jitter=0.25))
    try:
        assert await deliverer.run_once() == 1
        [delivery] = await rows(engine, "SELECT * FROM host_delivery")
        assert (delivery["status"], delivery["attempts"], delivery["last_status"]) == ("pending", 1, 500)
        assert start + 10 <= delivery["next_attempt_at"] <= start + 13
        assert delivery["give_up_at"] == start + 24 * 3600
        assert delivery["last_error"] == "HTTP 500: try later"

        clock.advance(9)
        assert await deliverer.run_once() == 0  # not due yet
        clock.advance(5)
        assert await deliverer.run_once() == 1
        [delivery] = await rows(engine, "SELECT * FROM host_delivery")
        assert (delivery["status"], delivery["attempts"]) == ("pending", 2)
        assert int(clock.now) + 30 <= delivery["next_attempt_at"] <= int(clock.now) + 38

        clock.advance(40)
        assert await deliverer.run_once() == 1
    finally:
        await deliverer.aclose()
    [delivery] = await rows(engine, "SELECT * FROM host_delivery")
    assert (delivery["status"], delivery["attempts"], delivery["last_status"]) == ("delivered", 3, 200)
    attempts = await rows(engine, "SELECT status, error FROM host_delivery_attempt ORDER BY id")
    assert attempts == [
        {"status": 500, "error": "HTTP 500: try later"},
        {"status": 500, "error": "HTTP 500: try later"},
        {"status": 200, "error": None},
    ]
    assert [c.answered for c in app.calls] == [500, 500, 200]
    assert [c.event["id"] for c in app.calls if c.event] == [event_id] * 3  # each one signed and verified


async def test_a_receiver_that_is_down_is_retried_then_failed_and_redelivered_when_up(
    engine: AsyncEngine,
) -> None:
    port = free_port()  # nothing listens there yet
    app = Receiver()
    made = await endpoint(engine, app, f"http://127.0.0.1:{port}/hooks")
    await emit_committed(engine)
    clock = Clock()
    deliverer = Deliverer(engine, clock=clock, backoff=Backoff(schedule=(10,), jitter=0.0, window=25))
    try:
        for _ in range(3):  # at +0, +10, +20; the next would be after the window
            assert await deliverer.run_once() == 1
            clock.advance(10)
        assert await deliverer.run_once() == 0
        async with engine.begin() as conn:
            [failed] = await conn.run_sync(lambda c: list_deliveries(c, status="failed"))
        assert (failed.endpoint_id, failed.attempts, failed.last_status) == (made.id, 3, None)
        assert failed.last_error is not None
        assert "ConnectError" in failed.last_error
        logged = await rows(engine, "SELECT status, error, duration_ms FROM host_delivery_attempt")
        assert len(logged) == 3
        assert all(r["status"] is None and "ConnectError" in r["error"] for r in logged)

        with serve_in_thread(app, port, ready_path="/healthz"):
            clock.advance(3600)
            assert await deliverer.run_once() == 0  # failed stays failed...
            async with engine.begin() as conn:
                await conn.run_sync(lambda c: redeliver(c, failed.id, now=int(clock.now)))
            assert await deliverer.run_once() == 1  # ...until an operator redelivers it
    finally:
        await deliverer.aclose()
    [delivery] = await rows(engine, "SELECT status, attempts FROM host_delivery")
    assert delivery == {"status": "delivered", "attempts": 1}
    assert len(app.verified()) == 1
    assert len(await rows(engine, "SELECT id FROM host_delivery_attempt")) == 4


async def test_a_claim_is_a_lease_and_only_its_holder_records(engine: AsyncEngine) -> None:
    """Two claims at once never get the same delivery; a crashed holder's lease runs out (at
    least once); a holder whose claim was taken over logs its attempt but settles nothing."""
    app = Receiver()
    await endpoint(engine, app, "http://127.0.0.1:9/never")
    await emit_committed(engine)
    now = int(time.time())
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: fan_out(c, now=now))
    async with engine.begin() as conn:
        [first] = await conn.run_sync(lambda c: claim(c, now=now, lease=70, limit=10))
    async with engine.begin() as conn:
        assert await conn.run_sync(lambda c: claim(c, now=now, lease=70, limit=10)) == []
        assert await conn.run_sync(lambda c: claim(c, now=now + 69, lease=70, limit=10)) == []
    async with engine.begin() as conn:  # the first holder died before recording: taken over
        [second] = await conn.run_sync(lambda c: claim(c, now=now + 70, lease=70, limit=10))
    assert second.delivery_id == first.delivery_id
    assert second.token != first.token

    late = Outcome(status=200, error=None, duration_ms=5)
    async with engine.begin() as conn:
        assert (
            await conn.run_sync(lambda c: record(c, first, late, now=now, backoff=Backoff(), rand=0)) is None
        )
    [delivery] = await rows(engine, "SELECT status, claim, attempts FROM host_delivery")
    assert delivery == {"status": "pending", "claim": second.token, "attempts": 0}
    failed = Outcome(status=503, error="HTTP 503", duration_ms=7)
    async with engine.begin() as conn:
        status = await conn.run_sync(
            lambda c: record(c, second, failed, now=now + 71, backoff=Backoff(), rand=0)
        )
    assert status == "pending"
    assert len(await rows(engine, "SELECT id FROM host_delivery_attempt")) == 2


async def test_two_deliverers_post_each_attempt_once(
    engine: AsyncEngine, settings: Settings, receiver: tuple[Receiver, str]
) -> None:
    """Two deliverers (own engines, as two replicas) on one database, polling fast: every
    delivery gets exactly two POSTs (the first answered 500, then retried) and two log rows."""
    app, base = receiver
    app.fail_first = 1
    app.delay = 0.02
    await endpoint(engine, app, base + "/a")
    await endpoint(engine, app, base + "/b", "balance.low")
    events = [await emit_committed(engine, "balance.low" if n % 2 else "balance.credited") for n in range(20)]
    engines = [engine, make_engine(settings)]
    stop = asyncio.Event()
    fast = Backoff(schedule=(1,), jitter=0.0)
    deliverers = [Counting(e, poll=0.01, backoff=fast, concurrency=4) for e in engines]
    tasks = [asyncio.create_task(d.run(stop)) for d in deliverers]
    try:
        expected = 2 * (len(events) + len(events) // 2)
        for _ in range(600):  # 30 s at most
            if len(app.calls) >= expected:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # a duplicate would show up by now
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for d in deliverers:
            await d.aclose()
        await engines[1].dispose()
    assert app.rejected() == []
    posts: dict[tuple[str, str], int] = {}
    for call in app.calls:
        key = (call.path, call.headers["storefront-event-id"])
        posts[key] = posts.get(key, 0) + 1
    assert len(posts) == len(events) + len(events) // 2
    assert set(posts.values()) == {2}
    deliveries = await rows(engine, "SELECT status, attempts FROM host_delivery")
    assert {(d["status"], d["attempts"]) for d in deliveries} == {("delivered", 2)}
    assert len(await rows(engine, "SELECT id FROM host_delivery_attempt")) == len(app.calls)
    assert all(d.attempted for d in deliverers), [d.attempted for d in deliverers]  # both took part


class Counting(Deliverer):
    attempted: int = 0

    async def attempt(self, claimed: Claimed) -> Outcome:
        self.attempted += 1
        return await super().attempt(claimed)


class CrashesBeforeRecording(Deliverer):
    """POSTs, then dies before the outcome reaches the database."""

    async def _sync(self, operation: Any, /, **kwargs: Any) -> Any:
        if "outcome" in kwargs:
            raise ConnectionError("the process died here")
        return await super()._sync(operation, **kwargs)


async def test_a_crash_between_post_and_record_means_a_second_post_never_none(
    engine: AsyncEngine, receiver: tuple[Receiver, str]
) -> None:
    app, base = receiver
    await endpoint(engine, app, base + "/hooks")
    event_id = await emit_committed(engine)
    clock = Clock()
    crashing = CrashesBeforeRecording(engine, clock=clock)
    survivor = Deliverer(engine, clock=clock)
    try:
        assert await crashing.run_once() == 1
        assert len(app.verified()) == 1  # the host has it; the shop does not know
        [delivery] = await rows(engine, "SELECT status, claim FROM host_delivery")
        assert delivery["status"] == "pending"
        assert delivery["claim"] is not None
        assert await survivor.run_once() == 0  # leased: nobody POSTs it meanwhile
        clock.advance(survivor.lease)
        assert await survivor.run_once() == 1
    finally:
        await crashing.aclose()
        await survivor.aclose()
    assert [e["id"] for e in app.verified()] == [event_id, event_id]
    [delivery] = await rows(engine, "SELECT status FROM host_delivery")
    assert delivery["status"] == "delivered"


async def test_a_rotated_secret_signs_beside_the_old_one_during_the_overlap(
    engine: AsyncEngine, receiver: tuple[Receiver, str]
) -> None:
    app, base = receiver
    made = await endpoint(engine, app, base + "/hooks")
    clock = Clock()
    async with engine.begin() as conn:
        new = await conn.run_sync(lambda c: rotate_secret(c, made.id, now=int(clock.now), overlap=600))
    assert new is not None
    assert new.startswith("whsec_")
    assert new != made.secret
    app.secrets["/hooks"] = new
    deliverer = Deliverer(engine, clock=clock)
    try:
        await emit_committed(engine)
        assert await deliverer.run_once() == 1
        clock.advance(601)
        await emit_committed(engine)
        assert await deliverer.run_once() == 1
    finally:
        await deliverer.aclose()
    during, after = app.calls
    assert during.event is not None
    assert after.event is not None  # both verified with the new secret
    assert during.headers["storefront-signature"].count("v1=") == 2
    assert verify_signature(during.body, during.headers["storefront-signature"], made.secret)
    assert after.headers["storefront-signature"].count("v1=") == 1
    with pytest.raises(SignatureVerificationError):
        verify_signature(after.body, after.headers["storefront-signature"], made.secret)


async def test_a_backlog_is_worked_through_without_waiting_a_poll_per_batch(
    engine: AsyncEngine, receiver: tuple[Receiver, str]
) -> None:
    """Two slots, ten events, a poll of 30 s: only the first look waits for nothing; the
    next ones come as attempts finish, so the backlog is gone long before a second poll."""
    app, base = receiver
    await endpoint(engine, app, base + "/hooks")
    for _ in range(10):
        await emit_committed(engine)
    deliverer = Deliverer(engine, poll=30, concurrency=2)
    stop = asyncio.Event()
    task = asyncio.create_task(deliverer.run(stop))
    try:
        for _ in range(200):  # 10 s at most
            if len(app.calls) >= 10:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task
        await deliverer.aclose()
    assert len(app.verified()) == 10


async def test_a_hanging_endpoint_cannot_take_every_slot_from_the_others(
    engine: AsyncEngine, receiver: tuple[Receiver, str]
) -> None:
    """Four slots, one endpoint that holds every request 20 s, one that answers at once: the
    quick one's twenty deliveries all arrive while the slow one's are still hanging."""
    app, base = receiver
    app.delays["/slow"] = 20.0
    await endpoint(engine, app, base + "/slow")
    await endpoint(engine, app, base + "/quick")
    for _ in range(20):
        await emit_committed(engine)
    deliverer = Deliverer(engine, poll=0.02, concurrency=4, timeout=30)
    stop = asyncio.Event()
    task = asyncio.create_task(deliverer.run(stop))
    try:
        for _ in range(200):  # 10 s at most, well before any slow request ends
            if len(app.verified("/quick")) >= 20:
                break
            await asyncio.sleep(0.05)
        quick = len(app.verified("/quick"))
    finally:
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await deliverer.drain(grace=0.1)  # the hanging attempts are cancelled (they would be retried)
        await deliverer.aclose()
    assert quick == 20
    assert app.verified("/slow") == []


def test_slots_are_dealt_round_the_endpoints_within_each_ones_room() -> None:
    assert share_slots({1: 10, 2: 10, 3: 1}, 5) == {1: 2, 2: 2, 3: 1}
    assert share_slots({1: 3}, 8) == {1: 3}
    assert share_slots({1: 0, 2: 4}, 2) == {2: 2}
    assert share_slots({}, 4) == {}


async def test_settled_events_past_the_keep_days_are_purged_with_their_log_and_pending_ones_kept(
    engine: AsyncEngine, receiver: tuple[Receiver, str]
) -> None:
    app, base = receiver
    await endpoint(engine, app, base + "/hooks")
    old_delivered = await emit_committed(engine)
    recent = await emit_committed(engine)
    deliverer = Deliverer(engine, keep_days=30)
    try:
        assert await deliverer.run_once() == 2
        old_pending = await emit_committed(engine)
        await deliverer.fan_out()  # fanned out, never attempted: still pending
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE host_event SET created = created - 40 * 86400 WHERE id IN (:a, :b)"),
                {"a": old_delivered, "b": old_pending},
            )
        assert await deliverer.purge() == 1
        assert await deliverer.purge() == 0
    finally:
        await deliverer.aclose()
    events = {row["id"] for row in await rows(engine, "SELECT id FROM host_event")}
    assert events == {recent, old_pending}
    deliveries = await rows(engine, "SELECT event_id FROM host_delivery")
    assert {row["event_id"] for row in deliveries} == {recent, old_pending}
    attempts = await rows(
        engine,
        "SELECT a.id FROM host_delivery_attempt a LEFT JOIN host_delivery d ON d.id = a.delivery_id"
        " WHERE d.id IS NULL",
    )
    assert attempts == []
    assert len(await rows(engine, "SELECT id FROM host_delivery_attempt")) == 1
