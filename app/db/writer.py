"""The money writer of this process: which one (:func:`get_writer`), and its start and stop.

Every money write a request waits for (webhook events, debits, holds, key checks) is one
operation of the writer, answered after its batch's COMMIT (group commit:
``app.db.group_commit``). Which writer runs them:

* SQLite, ``STOREFRONT_MONEY_WRITER=process`` (the default): a child process
  (``app.db.writer_process``), so the writer and the event loop do not share one GIL.
* SQLite, ``thread``: a thread of this process (:class:`~app.db.group_commit.SqliteWriter`);
  what the tests use, and what a process writer falls back to for operations that do not pickle.
* PostgreSQL: writer lanes on the app's async engine (:class:`~app.db.group_commit.PostgresWriter`).
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig, SQLAlchemyPlugin
from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.plugins import InitPluginProtocol
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.compiled import CompiledConnection
from app.db.group_commit import (
    Job,
    Operation,
    PostgresWriter,
    SqliteWriter,
    Task,
    Writer,
    job,
    process_batch,
)
from app.db.reader import STATE_KEY as READER_KEY
from app.db.reader import Reader
from app.db.writer_process import ProcessWriter
from app.settings import Settings

__all__ = (
    "Job",
    "Operation",
    "PostgresWriter",
    "ProcessWriter",
    "SqliteWriter",
    "Task",
    "Writer",
    "WriterPlugin",
    "background_writer",
    "get_writer",
    "job",
    "on_connection",
    "process_batch",
    "write_transaction",
)

R = TypeVar("R")

STATE_KEY = "money_writer"


def get_writer(app: Litestar) -> Writer:
    """This app's writer, made on first use (no await in between, so made once)."""
    writer: Writer | None = app.state.get(STATE_KEY)
    if writer is not None:
        return writer
    settings: Settings = app.state["settings"]
    if settings.is_sqlite and settings.money_writer == "process":
        writer = ProcessWriter(settings.database_url, log_level=settings.log_level)
    elif settings.is_sqlite:
        writer = SqliteWriter(settings.database_url)
    else:
        config = app.plugins.get(SQLAlchemyPlugin).config[0]
        if not isinstance(config, SQLAlchemyAsyncConfig):
            raise TypeError("the money writer needs the async SQLAlchemy config")
        writer = PostgresWriter(config.get_engine())
    app.state[STATE_KEY] = writer
    return writer


def on_connection(operation: Callable[..., R], conn: Any, /, **kwargs: Any) -> R:
    """A writer operation that runs ``operation`` on SQLAlchemy's own ``Connection``.

    For work whose statements are built per call (a list of ids in an ``IN``, optional
    filters): the writer's compile-once executor keeps a plan per statement object, so those
    would pile up there; SQLAlchemy's ``Connection`` caches compiled forms in a bounded LRU.
    """
    connection = conn.sqlalchemy_connection if isinstance(conn, CompiledConnection) else conn
    return operation(connection, **kwargs)


async def write_transaction(
    writer: Writer | None,
    engine: AsyncEngine,
    operation: Callable[..., R],
    /,
    **kwargs: Any,
) -> R:
    """Run ``operation(conn, **kwargs)`` (``conn`` a SQLAlchemy ``Connection``) in one write
    transaction: as an operation of ``writer`` when one is given, else on ``engine``.

    Background workers (the host webhook deliverer, the mail worker, the expiry sweeper, the
    database rate counters) pass the money writer on SQLite (:func:`background_writer`): a
    transaction of their own there takes SQLite's one write lock, and the writer's batch (the
    webhooks and debits requests wait on) then sleeps in SQLite's busy handler until it is free
    (``bench/webhook_bench.py``: p99 52-59 ms with the deliverer's own transactions, 12.9 ms with
    the deliverer off, on one machine; on a slower one 155-520 ms with the workers' own
    transactions and 26-28 ms through the writer, the same as with them off). Arguments must
    pickle for the writer process (module-level functions).
    """
    if writer is not None:
        result: R = await writer.call(partial(on_connection, operation, **kwargs))
        return result
    async with engine.begin() as conn:
        return await conn.run_sync(operation, **kwargs)


def background_writer(app: Litestar) -> Writer | None:
    """The writer background workers write through: the money writer on SQLite, none on PostgreSQL
    (row locks there; a worker's own transactions block nobody's batch)."""
    settings: Settings = app.state["settings"]
    return get_writer(app) if settings.is_sqlite else None


def _start_writer(app: Litestar) -> None:
    """A process writer's child is started with the app, not by its first request."""
    writer = get_writer(app)
    if isinstance(writer, ProcessWriter):
        writer.start()


async def _close_reader(app: Litestar) -> None:
    reader: Reader | None = app.state.get(READER_KEY)
    if reader is not None:
        app.state[READER_KEY] = None
        reader.close()


async def _close_writer(app: Litestar) -> None:
    writer: Writer | None = app.state.get(STATE_KEY)
    if writer is not None:
        app.state[STATE_KEY] = None
        await writer.close()


def _freeze_startup_heap(app: Litestar) -> None:
    """Move everything built at start-up out of the cyclic GC's reach.

    A full (generation 2) collection walks every object in the process — SQLAlchemy's
    metadata, Litestar's routing, Jinja, the catalogue — and took ~80 ms here, stalling every
    request in flight (it was the whole p99 of the webhook bench: 89 ms with it, 19 ms
    without). Objects made at start-up live as long as the process, so after one collection
    we freeze them (``gc.freeze``, as CPython's docs suggest for long-lived servers); later
    collections only walk objects made since. Production only: a test process builds many
    apps, and frozen objects are never collected.
    """
    settings: Settings = app.state["settings"]
    if settings.is_production:
        gc.collect()
        gc.freeze()


class WriterPlugin(InitPluginProtocol):
    """Process set-up for the money writes: freezes the start-up heap (see
    :func:`_freeze_startup_heap`), starts a writer process, and stops the writer (after its last
    commit) at shutdown."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.on_startup.append(_freeze_startup_heap)
        app_config.on_startup.append(_start_writer)
        app_config.on_shutdown.append(_close_writer)
        app_config.on_shutdown.append(_close_reader)
        return app_config
