"""The SQLite money writer in a child process (app/db/writer_process.py).

Answers come after the COMMIT, a failing operation fails alone, closures run in the server's
process, a killed child fails only the requests it held and the next call starts another, and a
webhook over HTTP credits exactly once through it (with its counters counted in the server).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from dataclasses import replace
from functools import partial
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from structlog.testing import capture_logs

from app.db.writer_process import ProcessWriter, WriterGone
from app.money.models import LedgerEntry
from app.settings import Settings
from app.web.factory import create_app
from tests.db import writer_ops
from tests.support.servers import serve_in_thread
from tests.webhooks.factories import checkout_session, event, new_order, session_factory, signed

pytestmark = pytest.mark.anyio


def _stored(settings: Settings) -> int:
    path = settings.database_url.split("///", 1)[1]
    with sqlite3.connect(path) as conn:
        return int(
            conn.execute("SELECT count(*) FROM kv_store WHERE namespace = 'writer-test'").fetchone()[0]
        )


async def test_answers_come_after_the_commit_and_a_failure_fails_alone(sqlite_settings: Settings) -> None:
    writer = ProcessWriter(sqlite_settings.database_url)
    try:
        results = await asyncio.gather(
            *(writer.call(partial(writer_ops.note, key=f"k{i}")) for i in range(20)),
            writer.call(partial(writer_ops.fail, message="bad data")),
            return_exceptions=True,
        )
        assert results[:20] == [f"k{i}" for i in range(20)]
        assert isinstance(results[20], ValueError)
        assert str(results[20]) == "bad data"
        assert _stored(sqlite_settings) == 20  # committed when answered; the failure rolled back alone
        # An error that does not unpickle fails its own call (named), and no other.
        odd, fine = await asyncio.gather(
            writer.call(writer_ops.fail_oddly),
            writer.call(partial(writer_ops.note, key="beside")),
            return_exceptions=True,
        )
        assert isinstance(odd, RuntimeError)
        assert "OddError" in str(odd)
        assert fine == "beside"
        assert _stored(sqlite_settings) == 21
        assert await writer.call(writer_ops.count) == 21
        # A closure does not pickle: it runs in this process, on the writer thread, all the same,
        # and the first of its kind is logged (that thread is a second SQLite writer).
        with capture_logs() as logs:
            for _ in range(2):
                local = await writer.call(lambda conn: writer_ops.count(conn) + 1)
                assert local == 22
        warned = [e for e in logs if e["event"] == "writer.operation_not_picklable"]
        assert len(warned) == 1, logs
        assert "lambda" in warned[0]["operation"]
        child = await writer.call(writer_ops.pid)
        assert child != os.getpid()
    finally:
        await writer.close()


async def test_a_killed_child_fails_its_requests_and_the_next_call_starts_another(
    sqlite_settings: Settings,
) -> None:
    writer = ProcessWriter(sqlite_settings.database_url)
    try:
        first = await writer.call(writer_ops.pid)
        with pytest.raises(WriterGone):
            await writer.call(writer_ops.die)
        second = await writer.call(writer_ops.pid)
        assert second != first
        assert await writer.call(partial(writer_ops.note, key="after")) == "after"
        assert _stored(sqlite_settings) == 1
    finally:
        await writer.close()


async def test_close_finishes_what_was_sent(sqlite_settings: Settings) -> None:
    writer = ProcessWriter(sqlite_settings.database_url)
    calls = [asyncio.ensure_future(writer.call(partial(writer_ops.note, key=f"c{i}"))) for i in range(50)]
    await asyncio.sleep(0)  # the calls are queued
    await writer.close()
    done = [call.result() for call in calls if not call.exception()]
    assert len(done) == 50
    assert _stored(sqlite_settings) == 50
    with pytest.raises(RuntimeError, match="closed"):
        await writer.call(writer_ops.count)


def _other_mode_count() -> float:
    return REGISTRY.get_sample_value("storefront_stripe_events_other_mode_total", {"livemode": "true"}) or 0.0


async def test_a_webhook_credits_once_through_the_writer_process(sqlite_settings: Settings) -> None:
    settings = replace(sqlite_settings, money_writer="process", stripe_api_base="http://127.0.0.1:9")
    async with session_factory(settings) as sessions:
        await _webhooks_through_the_child(settings, sessions)


async def _webhooks_through_the_child(settings: Settings, sessions: Any) -> None:
    order = await new_order(sessions)
    secret = settings.stripe_webhook_secrets[0]
    body, headers = signed(event("checkout.session.completed", checkout_session(order)), secret)
    live_body, live_headers = signed({**event("product.created", {"id": "prod_1"}), "livemode": True}, secret)
    other_mode = _other_mode_count()
    with serve_in_thread(create_app(settings)) as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=20) as client:
            answers = await asyncio.gather(
                *(client.post("/webhooks/stripe", content=body, headers=headers) for _ in range(10))
            )
            live = await client.post("/webhooks/stripe", content=live_body, headers=live_headers)
    assert [answer.status_code for answer in answers] == [200] * 10
    assert sorted(answer.json()["duplicate"] for answer in answers) == [False] + [True] * 9
    assert live.status_code == 200
    assert live.json()["outcome"].startswith("ignored: livemode")
    assert _other_mode_count() == other_mode + 1  # counted by the server, not lost in the child
    async with sessions() as db:
        credits = await db.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.order_id == order.id)
        )
    assert credits == 1
