"""Small SQL plumbing shared by every feature: the dialect's INSERT and the async-to-sync bridge.

The money core is written once, synchronously, against :class:`SqlConnection`: what it needs
of a connection, which SQLAlchemy's ``Connection`` is (async callers reach it through
:func:`run`, which runs it on the connection of their own transaction) and so is
``app.db.compiled.CompiledConnection`` (the webhook writers': SQLite's thread, PostgreSQL's lanes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import structlog
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ("SavepointConnection", "SqlConnection", "dialect_insert", "run")

P = ParamSpec("P")
T = TypeVar("T")

log = structlog.get_logger()

RETRIED_SQLSTATES = frozenset({"40P01", "40001"})
"""PostgreSQL's deadlock_detected and serialization_failure: the database chose this transaction
to give way; running the same operation again is the documented answer."""
ATTEMPTS = 3


class SqlConnection(Protocol):
    """What the money code needs of a connection: run a Core statement, know the dialect.

    Rows are read by position; results offer ``first()``, ``one()``, ``all()``, ``scalar()``
    and iteration.
    """

    @property
    def dialect(self) -> Any: ...

    def execute(self, statement: Any, parameters: Any = ..., /) -> Any: ...


class SavepointConnection(SqlConnection, Protocol):
    """A connection that can also open a SAVEPOINT (``with conn.begin_nested(): ...``)."""

    def begin_nested(self) -> Any: ...


def dialect_insert(dialect: str, table: Any) -> Any:
    """The dialect's INSERT, which knows ``ON CONFLICT``; both databases we run on have it."""
    if dialect == "postgresql":
        return pg_insert(table)
    if dialect == "sqlite":
        return sqlite_insert(table)
    raise RuntimeError(f"unsupported database dialect {dialect!r}")


def _gave_way(error: DBAPIError) -> bool:
    return getattr(error.orig, "sqlstate", None) in RETRIED_SQLSTATES


async def run(
    db: AsyncSession, operation: Callable[Concatenate[Connection, P], T], /, *args: P.args, **kwargs: P.kwargs
) -> T:
    """Run a synchronous ``operation(conn, ...)`` in ``db``'s transaction (flushes first, never commits).

    On PostgreSQL it runs inside a SAVEPOINT and is run again (up to :data:`ATTEMPTS` times) when
    the database picked it as a deadlock's victim: a webhook lane's batch holds several orders'
    and balances' locks at once, so a page crediting one of them can meet it in the other order.
    The savepoint's rollback undoes the attempt and releases its locks; the rest of the request's
    transaction stands. SQLite has one writer at a time and no deadlocks: no savepoint.

    ORM objects ``db`` holds are not told about Core updates: callers that keep one re-read it.
    """
    await db.flush()
    conn = await db.connection()
    if conn.dialect.name != "postgresql":
        return await conn.run_sync(operation, *args, **kwargs)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            async with conn.begin_nested():
                return await conn.run_sync(operation, *args, **kwargs)
        except DBAPIError as error:
            if attempt == ATTEMPTS or not _gave_way(error):
                raise
            log.info("money.retried", operation=getattr(operation, "__name__", "?"), attempt=attempt)
    raise AssertionError("unreachable")
