"""Reads the host API answers many times a second: one thread hop per operation on SQLite.

aiosqlite hands every statement to the connection's thread and back; measured here, a
connection, one ``SELECT 1`` and its rollback took 2.6 ms that way (400/s), and a balance read
(six statements) 8.7 ms. :class:`Reader` runs a whole synchronous read operation on a
pooled ``sqlite3`` connection in a worker thread instead: one hop, the statements at C speed.
Each thread keeps its own connection (WAL: readers never wait for the writer), in a DEFERRED
transaction that is rolled back after the operation, so nothing here can write.
On PostgreSQL the operation runs on the app's async engine (asyncpg is not the bottleneck).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Final, TypeVar

from litestar import Litestar
from sqlalchemy import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.config import READ_ONLY, sync_sqlite_engine
from app.db.sql import SqlConnection

__all__ = ("Reader", "get_reader")

T = TypeVar("T")
STATE_KEY: Final = "money_reader"
THREADS: Final = 4


class Reader:
    """Runs ``operation(conn)`` read-only and returns its result."""

    def __init__(self, database_url: str, engine: AsyncEngine) -> None:
        self._async_engine = engine
        self._sqlite = database_url.startswith("sqlite")
        self._engine: Engine | None = sync_sqlite_engine(database_url) if self._sqlite else None
        self._pool: ThreadPoolExecutor | None = (
            ThreadPoolExecutor(THREADS, thread_name_prefix="money-reader") if self._sqlite else None
        )
        self._local = threading.local()

    def _connection(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            assert self._engine is not None
            conn = self._engine.connect()
            self._local.conn = conn
        return conn

    def _run(self, operation: Callable[[SqlConnection], T]) -> T:
        conn = self._connection()
        token = READ_ONLY.set(True)  # a DEFERRED BEGIN: never the write lock
        try:
            with conn.begin() as transaction:
                try:
                    return operation(conn)
                finally:
                    transaction.rollback()
        finally:
            READ_ONLY.reset(token)

    async def call(self, operation: Callable[[SqlConnection], T]) -> T:
        if self._pool is None:
            token = READ_ONLY.set(True)
            try:
                async with self._async_engine.connect() as conn:
                    return await conn.run_sync(operation)
            finally:
                READ_ONLY.reset(token)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._run, operation)

    def call_here(self, operation: Callable[[SqlConnection], T]) -> T:
        """SQLite: run ``operation`` on the calling thread (the event loop), on its own connection.

        For a read of a few indexed rows only: WAL readers never wait for the writer, and the
        hop to a pool thread and back cost more than the read itself (see app/api/hot.py).
        """
        if self._engine is None:
            raise RuntimeError("call_here is for SQLite")
        return self._run(operation)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        if self._engine is not None:
            self._engine.dispose()


def get_reader(app: Litestar, database_url: str, engine: AsyncEngine) -> Reader:
    """This app's reader, made on first use."""
    reader: Reader | None = app.state.get(STATE_KEY)
    if reader is None:
        reader = Reader(database_url, engine)
        app.state[STATE_KEY] = reader
    return reader
