"""The outbox and its worker against both databases: transactions, claims, retries, SMTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.config import make_engine
from app.db.writer import STATE_KEY as WRITER_KEY
from app.db.writer import background_writer
from app.mail.messages import Composer
from app.mail.outbox import enqueue
from app.mail.transport import SMTPTransport, TransportError
from app.mail.worker import MAX_ATTEMPTS, MailWorker, claim, record
from app.settings import Settings
from app.web.factory import create_app
from tests.support.aio import run_async
from tests.support.servers import serve_in_thread
from tests.support.shop import wait_for
from tests.support.smtp import html_of, smtp_server, text_of
from tests.support.writers import recording_writer

pytestmark = pytest.mark.anyio

TOKEN = "t" * 43


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(settings)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _user(engine: AsyncEngine, email: str = "ann@example.com", locale: str | None = None) -> int:
    async with engine.begin() as conn:
        row = await conn.execute(
            text(
                "INSERT INTO user_account (email, password_hash, is_admin, locale, session_epoch, "
                "created_at, updated_at) VALUES (:email, 'x', false, :locale, 0, CURRENT_TIMESTAMP, "
                "CURRENT_TIMESTAMP) RETURNING id"
            ),
            {"email": email, "locale": locale},
        )
        return int(row.scalar_one())


async def _rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        result = await conn.execute(text("SELECT * FROM mail_outbox ORDER BY id"))
        return [dict(row._mapping) for row in result]


async def _queue(engine: AsyncEngine, user_id: int, count: int = 1) -> None:
    async with engine.begin() as conn:
        for n in range(count):
            data = {"token": TOKEN}
            await conn.run_sync(
                lambda sync, n=n, data=data: enqueue(
                    sync, "password_reset", user_id=user_id, data=data, key=f"k{n}", secret=True
                )
            )


class Flaky:
    """Fails the first ``failures`` sends, then keeps what it is given."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[EmailMessage] = []

    async def send(self, message: EmailMessage, *, message_id: int) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise TransportError("421 try again later")
        self.sent.append(message)


def _worker(engine: AsyncEngine, transport: Any) -> MailWorker:
    composer = Composer(base_url="http://shop.test", sender="Shop <shop@shop.test>")
    return MailWorker(engine, transport, composer)


async def test_a_rolled_back_event_leaves_no_message_and_a_key_queues_once(engine: AsyncEngine) -> None:
    user_id = await _user(engine)

    async def failing_event() -> None:
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync: enqueue(sync, "receipt", user_id=user_id, data={"order_id": 1}))
            raise RuntimeError("the event failed after queueing its mail")

    with pytest.raises(RuntimeError, match="the event failed"):
        await failing_event()
    assert await _rows(engine) == []
    for _ in range(2):  # the same event seen twice (webhook and success page) queues one receipt
        async with engine.begin() as conn:
            await conn.run_sync(
                lambda sync: enqueue(sync, "receipt", user_id=user_id, data={"order_id": 1}, key="receipt:1")
            )
    rows = await _rows(engine)
    assert [(r["kind"], r["status"], r["dedupe_key"]) for r in rows] == [("receipt", "pending", "receipt:1")]


async def test_two_workers_claim_every_message_once(settings: Settings, engine: AsyncEngine) -> None:
    user_id = await _user(engine)
    await _queue(engine, user_id, count=30)
    other = make_engine(settings)
    try:

        async def grab(on: AsyncEngine) -> list[int]:
            """Claim 4 at a time until nothing is unclaimed, at most 20: neither can take all 30."""
            taken: list[int] = []
            while len(taken) < 20:
                async with on.begin() as conn:
                    room = min(4, 20 - len(taken))
                    batch = await conn.run_sync(lambda sync, room=room: claim(sync, now=10**10, limit=room))
                    left = (
                        await conn.execute(text("SELECT count(*) FROM mail_outbox WHERE claim IS NULL"))
                    ).scalar()
                taken += [item.id for item in batch]
                if not batch and not left:
                    break
                await asyncio.sleep(0)
            return taken

        first, second = await asyncio.gather(grab(engine), grab(other))
    finally:
        await other.dispose()
    assert not set(first) & set(second)
    assert sorted(first + second) == [row["id"] for row in await _rows(engine)]
    assert first, "both workers got some: they ran side by side"
    assert second


async def test_a_failed_send_is_retried_later_then_sent_and_its_secret_emptied(engine: AsyncEngine) -> None:
    user_id = await _user(engine)
    await _queue(engine, user_id)
    transport = Flaky(failures=1)
    worker = _worker(engine, transport)
    assert await worker.run_once() == 1
    [row] = await _rows(engine)
    assert (row["status"], row["attempts"], row["claim"]) == ("pending", 1, None)
    assert "421" in row["last_error"]
    assert row["next_attempt_at"] >= row["created"] + 10  # backed off
    assert await worker.run_once() == 0  # not due yet
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE mail_outbox SET next_attempt_at = 0"))
    assert await worker.run_once() == 1
    [row] = await _rows(engine)
    assert (row["status"], row["attempts"], row["data"]) == ("sent", 2, "{}")
    assert TOKEN in text_of(transport.sent[0])


async def test_a_message_is_given_up_after_the_last_attempt(engine: AsyncEngine) -> None:
    user_id = await _user(engine)
    await _queue(engine, user_id)
    worker = _worker(engine, Flaky(failures=MAX_ATTEMPTS))
    for _ in range(MAX_ATTEMPTS):
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE mail_outbox SET next_attempt_at = 0"))
        assert await worker.run_once() == 1
    [row] = await _rows(engine)
    assert (row["status"], row["attempts"]) == ("failed", MAX_ATTEMPTS)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE mail_outbox SET next_attempt_at = 0"))
    assert await worker.run_once() == 0


async def test_an_expired_claim_cannot_record_over_a_newer_one(engine: AsyncEngine) -> None:
    user_id = await _user(engine)
    await _queue(engine, user_id)
    now = int(time.time())
    async with engine.begin() as conn:
        [old] = await conn.run_sync(lambda sync: claim(sync, now=now, limit=5, lease=10))
        assert await conn.run_sync(lambda sync: claim(sync, now=now + 5, limit=5)) == []  # leased
    async with engine.begin() as conn:  # the lease ran out: another worker claims it
        [new] = await conn.run_sync(lambda sync: claim(sync, now=now + 11, limit=5))
        assert await conn.run_sync(lambda sync: record(sync, old, error=None, now=now + 12)) is None
        assert await conn.run_sync(lambda sync: record(sync, new, error=None, now=now + 12)) == "sent"


async def test_smtp_delivery_speaks_the_accounts_language(engine: AsyncEngine) -> None:
    user_id = await _user(engine, "li@example.com", locale="zh")
    await _queue(engine, user_id)
    with smtp_server() as mailbox:
        worker = _worker(engine, SMTPTransport.from_url(mailbox.url))
        assert await worker.run_once() == 1
        message = await asyncio.to_thread(mailbox.wait, "li@example.com")
    assert message["Subject"] == "重置您的密码"
    assert message["From"] == "Shop <shop@shop.test>"
    assert f"http://shop.test/reset-password/{TOKEN}" in text_of(message)
    assert f'href="http://shop.test/reset-password/{TOKEN}"' in html_of(message)
    assert "设置新密码" in html_of(message)
    [row] = await _rows(engine)
    assert row["status"] == "sent"


async def test_an_smtp_server_that_is_down_is_a_retry_not_a_crash(engine: AsyncEngine) -> None:
    from tests.support.servers import free_port

    user_id = await _user(engine)
    await _queue(engine, user_id)
    worker = _worker(engine, SMTPTransport(hostname="127.0.0.1", port=free_port(), timeout=5))
    assert await worker.run_once() == 1
    [row] = await _rows(engine)
    assert (row["status"], row["attempts"]) == ("pending", 1)


class Slow:
    """An SMTP server that takes ``seconds`` per message; keeps the ids it was handed."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.sent: list[int] = []

    async def send(self, message: EmailMessage, *, message_id: int) -> None:
        await asyncio.sleep(self.seconds)
        self.sent.append(message_id)


async def test_a_slow_server_never_lets_a_lease_run_out_mid_batch(engine: AsyncEngine) -> None:
    """A batch sent one by one outlasts its lease; what is not started in time goes back, never twice."""
    user_id = await _user(engine)
    await _queue(engine, user_id, count=8)
    composer = Composer(base_url="http://shop.test", sender="Shop <shop@shop.test>")
    slow, other = Slow(0.5), Slow(0.0)
    first = MailWorker(engine, slow, composer, lease=4, attempt_seconds=1.0)
    second = MailWorker(engine, other, composer, lease=4, attempt_seconds=1.0)

    async def meanwhile(done: asyncio.Event) -> None:
        while not done.is_set():  # another replica looking every 0.2 s while the first is busy
            await second.run_once()
            await asyncio.sleep(0.2)

    done = asyncio.Event()
    watcher = asyncio.create_task(meanwhile(done))
    attempted = await first.run_once()
    done.set()
    await watcher
    deadline = time.monotonic() + 10
    while len(slow.sent) + len(other.sent) < 8 and time.monotonic() < deadline:
        await second.run_once()
        await asyncio.sleep(0.1)
    sent = slow.sent + other.sent
    assert sorted(sent) == sorted(set(sent)), f"sent twice: {sent}"
    assert len(sent) == 8
    assert 0 < attempted < 8  # eight half-second sends cannot all start inside a 4 s lease
    assert {row["status"] for row in await _rows(engine)} == {"sent"}


async def test_a_stopping_worker_hands_back_the_rest_of_its_batch_at_once(engine: AsyncEngine) -> None:
    """Shutdown does not wait for a batch of slow sends: what is not started goes back, due now."""
    user_id = await _user(engine)
    await _queue(engine, user_id, count=6)
    composer = Composer(base_url="http://shop.test", sender="Shop <shop@shop.test>")
    slow = Slow(0.3)
    worker = MailWorker(engine, slow, composer)
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.45, stop.set)  # during the second send
    started = time.monotonic()
    attempted = await worker.run_once(stop)
    took = time.monotonic() - started
    assert attempted == 2, attempted
    assert took < 1.2, took  # six sends would take 1.8 s
    rows = await _rows(engine)
    assert [r["status"] for r in rows].count("sent") == 2
    left = [r for r in rows if r["status"] == "pending"]
    assert len(left) == 4
    assert all(r["claim"] is None and r["attempts"] == 0 for r in left)  # handed back, not counted


def test_on_sqlite_the_apps_mail_worker_writes_through_the_money_writer(settings: Settings) -> None:
    """Claims and outcomes are operations of the money writer there, not transactions of their own."""
    shop = create_app(replace(settings, mail_poll_seconds=0.05))
    writer = recording_writer(settings.database_url) if settings.is_sqlite else None
    if writer is not None:
        shop.state[WRITER_KEY] = writer

    async def queue() -> None:
        engine = make_engine(settings)
        try:
            await _queue(engine, await _user(engine))
        finally:
            await engine.dispose()

    async def statuses() -> list[str]:
        engine = make_engine(settings)
        try:
            return [row["status"] for row in await _rows(engine)]
        finally:
            await engine.dispose()

    with serve_in_thread(shop):
        run_async(queue())
        wait_for(lambda: run_async(statuses()) == ["sent"], timeout=15, interval=0.05)
    if writer is not None:
        assert {"claim", "record"} <= set(writer.background), writer.background
    else:  # PostgreSQL: the worker's own transactions
        assert background_writer(shop) is None
