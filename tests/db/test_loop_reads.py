"""Read-only requests read SQLite on the event loop; anything that may wait goes to aiosqlite's thread."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.config import READ_ONLY, make_engine
from app.db.loop_reads import THREAD_READS, loop_reads_creator
from app.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
async def engine(sqlite_settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(sqlite_settings)

    @event.listens_for(engine.sync_engine, "connect")
    def _thread_function(dbapi_connection: Any, _record: Any) -> None:
        # Runs inside SQLite, so it names the thread the statement ran on.
        dbapi_connection.create_function("tid", 0, threading.get_ident)

    try:
        yield engine
    finally:
        await engine.dispose()


async def _ran_on(conn: Any) -> int:
    return int((await conn.execute(text("SELECT tid()"))).scalar_one())


async def test_a_read_only_transactions_reads_run_on_the_loop(engine: AsyncEngine) -> None:
    here = threading.get_ident()
    token = READ_ONLY.set(True)
    try:
        async with engine.connect() as conn:
            assert await _ran_on(conn) == here
            assert await _ran_on(conn) == here
            await conn.rollback()
    finally:
        READ_ONLY.reset(token)


async def test_other_transactions_run_on_aiosqlites_thread(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        assert await _ran_on(conn) != threading.get_ident()


async def test_after_a_write_the_rest_of_that_transaction_goes_to_the_thread(engine: AsyncEngine) -> None:
    """A write may wait for SQLite's lock (and its COMMIT syncs the WAL): never on the loop."""
    here = threading.get_ident()
    token = READ_ONLY.set(True)
    try:
        async with engine.connect() as conn:
            assert await _ran_on(conn) == here
            await conn.execute(text("DELETE FROM rate_limit_counter WHERE key = 'nobody'"))
            assert await _ran_on(conn) != here
            await conn.commit()
            # A new transaction reads on the loop again.
            assert await _ran_on(conn) == here
            await conn.rollback()
    finally:
        READ_ONLY.reset(token)


async def test_long_reads_stay_on_aiosqlites_thread(engine: AsyncEngine) -> None:
    """A read-only request marked for long reads (the admin console) never reads on the loop."""
    token, long_reads = READ_ONLY.set(True), THREAD_READS.set(True)
    try:
        async with engine.connect() as conn:
            assert await _ran_on(conn) != threading.get_ident()
            await conn.rollback()
    finally:
        THREAD_READS.reset(long_reads)
        READ_ONLY.reset(token)


def test_the_urls_driver_options_reach_sqlite(tmp_path: Any) -> None:
    """As SQLAlchemy's aiosqlite dialect reads them; the app's connect_args win."""
    creator = loop_reads_creator(f"sqlite+aiosqlite:///{tmp_path}/x.db?timeout=5&uri=true", timeout=30)
    connection = creator()
    try:
        assert connection._connector.args == (f"{tmp_path}/x.db",)  # the file, as sqlite3 is given it
        assert connection._connector.keywords == {"uri": True, "timeout": 30, "check_same_thread": False}
    finally:
        connection.stop()
