"""Small SQL plumbing shared by every feature: the dialect's INSERT and the async-to-sync bridge.

The money core is written once, synchronously, against :class:`SqlConnection`: what it needs
of a connection, which SQLAlchemy's ``Connection`` is (async callers reach it through
:func:`run`, which runs it on the connection of their own transaction) and so is
``app.db.compiled.CompiledConnection`` (the SQLite webhook writer's, on its own thread).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ("SqlConnection", "dialect_insert", "run")

P = ParamSpec("P")
T = TypeVar("T")


class SqlConnection(Protocol):
    """What the money code needs of a connection: run a Core statement, know the dialect.

    Rows are read by position; results offer ``first()``, ``one()``, ``all()``, ``scalar()``
    and iteration.
    """

    @property
    def dialect(self) -> Any: ...

    def execute(self, statement: Any, parameters: Any = ..., /) -> Any: ...


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
