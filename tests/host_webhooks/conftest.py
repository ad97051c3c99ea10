"""Fixtures of the host webhook tests: a receiver on a free port, an engine, endpoints, events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.config import make_engine
from app.host_webhooks.outbox import emit
from app.host_webhooks.service import NewEndpoint, add_endpoint
from app.settings import Settings
from tests.host_webhooks.receiver import Receiver
from tests.support.servers import serve_in_thread


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    """A receiver and its base URL."""
    app = Receiver()
    with serve_in_thread(app, ready_path="/healthz") as url:
        try:
            yield app, url
        finally:
            app.released.set()  # let held requests go, so the server need not wait for them


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    made = make_engine(settings)
    try:
        yield made
    finally:
        await made.dispose()


async def endpoint(engine: AsyncEngine, receiver: Receiver, url: str, events: str = "*") -> NewEndpoint:
    """An endpoint at ``url`` whose secret the receiver checks signatures with."""
    async with engine.begin() as conn:
        made: NewEndpoint = await conn.run_sync(lambda c: add_endpoint(c, url, events))
    receiver.secrets[urlsplit(url).path] = made.secret
    return made


async def emit_committed(engine: AsyncEngine, event_type: str = "balance.credited", **data: Any) -> str:
    async with engine.begin() as conn:
        event_id: str = await conn.run_sync(
            lambda c: emit(c, event_type, user_id=7, data={"asset": "coins", **data})
        )
    return event_id


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        result = await conn.execute(text(sql), params)
        return [dict(row._mapping) for row in result]
