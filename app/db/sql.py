"""Small SQL plumbing shared by every feature: the dialect's INSERT and the async-to-sync bridge.

The money core is written once, synchronously, on a SQLAlchemy ``Connection`` (the SQLite
webhook writer runs it on its own thread thousands of times a second, where an await per
statement would cost more than the statement). Async callers reach it through :func:`run`,
which runs it on the connection of their own transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ("dialect_insert", "run")

P = ParamSpec("P")
T = TypeVar("T")


def dialect_insert(dialect: str, table: Any) -> Any:
    """The dialect's INSERT, which knows ``ON CONFLICT``; both databases we run on have it."""
    if dialect == "postgresql":
        return pg_insert(table)
    if dialect == "sqlite":
        return sqlite_insert(table)
    raise RuntimeError(f"unsupported database dialect {dialect!r}")


async def run(
    db: AsyncSession, operation: Callable[Concatenate[Connection, P], T], /, *args: P.args, **kwargs: P.kwargs
) -> T:
    """Run a synchronous ``operation(conn, ...)`` in ``db``'s transaction (flushes first, never commits).

    ORM objects ``db`` holds are not told about Core updates: callers that keep one re-read it.
    """
    await db.flush()
    conn = await db.connection()
    return await conn.run_sync(operation, *args, **kwargs)
