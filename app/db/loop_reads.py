"""SQLite reads of read-only requests run on the event loop instead of aiosqlite's thread.

Why this exists: aiosqlite runs every call (each statement, each fetch, BEGIN and COMMIT) on a
thread of its own and hands the result back to the loop. Reading a row takes SQLite a few
microseconds; the hop there and back took ~540 µs per statement here (a ``SELECT 1`` through
SQLAlchemy, 2-core machine), so a signed-in page of a dozen statements spent most of its
~20 ms waiting for threads, and pages queued behind each other under load. Run on the loop,
the same statement took ~60 µs (figures: ``bench/mixed_load_bench.py`` in README).

It is safe only where nothing can wait, and only for short reads (:data:`THREAD_READS` keeps the
admin console's scans off the loop): a read in a DEFERRED transaction
(:data:`READ_ONLY`) never waits for a lock in WAL mode (writers do not block
readers, and the writer's checkpoints are PASSIVE), so it never blocks the loop. Anything
else still goes to the thread: every call outside a read-only request, and in a read-only
request any statement that is not a ``SELECT`` (the session store's upsert takes the write
lock and may wait for it) and everything after it until that transaction ends (its COMMIT
syncs the WAL). The connection is the same ``sqlite3`` connection either way
(``check_same_thread=False``, which SQLAlchemy's aiosqlite dialect sets anyway), used by
one caller at a time: SQLAlchemy awaits each call before the next.

The price: while SQLite reads, the loop does nothing else. The reads left here are index
look-ups of microseconds; the admin console's scans (its dashboard counts every order by
status: ~59 ms over 1,000,000 orders; its CSV exports) stay on the thread (:data:`THREAD_READS`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextvars import ContextVar
from functools import partial
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.engine import make_url

__all__ = ("READ_ONLY", "THREAD_READS", "LoopReadsConnection", "loop_reads_creator")

READ_ONLY: ContextVar[bool] = ContextVar("storefront_read_only", default=False)
"""Set for a request that only reads (``app.web.transactions.read_only_requests``): its SQLite
transactions begin DEFERRED, so they never wait for, nor hold, the write lock, and their reads
run on the event loop (below). Kept here, beside its second use; ``app.db.config`` re-exports it.

Safe only for transactions that write nothing, or whose first statement is their only write
(the session store's upsert): a deferred transaction that reads and then writes fails with
``SQLITE_BUSY`` instead of waiting when another writer got in between."""

THREAD_READS: ContextVar[bool] = ContextVar("storefront_thread_reads", default=False)
"""Set for a read-only request whose reads may be long (the admin console: its dashboard counts
every order by status, its searches scan, its exports read the whole ledger): they stay on
aiosqlite's thread. A read that waits for no lock still blocks the loop for as long as SQLite
works on it (a group-by over a million orders took ~60 ms here), and every other request, the
webhooks' answers included, would wait that long. Set by ``app.web.transactions``."""


class LoopReadsConnection(aiosqlite.Connection):
    """An aiosqlite connection that answers a read-only request's reads on the calling thread."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], iter_chunk_size: int = 64) -> None:
        super().__init__(connector, iter_chunk_size)
        self._thread.daemon = True  # as SQLAlchemy's dialect makes aiosqlite's own
        self._writing = False
        """A statement of this transaction went to the thread: so does the rest of it."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        on_loop = READ_ONLY.get() and not THREAD_READS.get()
        if on_loop and self._running and self._connection is not None and self._on_loop(fn, args):
            return fn(*args, **kwargs)
        return await super()._execute(fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    def _on_loop(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> bool:
        name = getattr(fn, "__name__", "")
        if name in ("commit", "rollback"):  # a read-only transaction's end is instant
            writing, self._writing = self._writing, False
            return not writing
        if self._writing:
            return False
        if name in ("execute", "executemany"):
            sql = args[0].strip().upper() if args and isinstance(args[0], str) else ""
            if sql == "BEGIN" or sql.startswith("SELECT"):
                return True
            # A PRAGMA (a new connection's settings, outside any transaction) writes no rows.
            self._writing = not sql.startswith("PRAGMA")
            return False
        if name == "close":  # a cursor's; the connection itself closes on its thread
            return isinstance(getattr(fn, "__self__", None), sqlite3.Cursor)
        return name in ("cursor", "fetchone", "fetchmany", "fetchall")


def loop_reads_creator(database_url: str, **connect_args: Any) -> Callable[[], LoopReadsConnection]:
    """An ``async_creator`` for ``create_async_engine``: SQLite connections of this kind.

    The file and the driver's options are read from ``database_url`` as SQLAlchemy's aiosqlite
    dialect reads them (``?timeout=``, ``?uri=true``...); ``connect_args`` win, as they do there.
    """
    args, options = SQLiteDialect_aiosqlite().create_connect_args(make_url(database_url))
    return partial(_connect, str(args[0]), {**options, **connect_args})


def _connect(database: str, connect_args: dict[str, Any]) -> LoopReadsConnection:
    return LoopReadsConnection(
        partial(sqlite3.connect, database, **{**connect_args, "check_same_thread": False})
    )
