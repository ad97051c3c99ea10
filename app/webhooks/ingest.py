"""Where verified webhook events are processed and committed before the 2xx.

PostgreSQL: one ``AsyncSession`` transaction per request (the server does the concurrency).

SQLite: one database file has one writer at a time anyway, and aiosqlite hands every
statement to a thread and back (~1,300 transactions/s). So a single writer thread owns one
``sqlite3`` connection and runs the SAME ``process_event_sync`` the async API runs (through
``app.webhooks.fastsql``, which executes the same SQLAlchemy statements compiled once), with
group commit: it takes every event queued (up to ``max_batch``), opens one
``BEGIN IMMEDIATE``, gives each event its own SAVEPOINT (an event that raises rolls back
alone and its request gets a 5xx), COMMITs once, and only then resolves the requests'
futures, so a 2xx always means "committed". Other writers (checkout, reconciliation)
queue on SQLite's lock with ``busy_timeout`` as usual.
"""

from __future__ import annotations

import asyncio
import gc
import queue
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.plugins import InitPluginProtocol
from sqlalchemy import Engine, create_engine
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from app.db.config import SQLITE_CONNECT_ARGS, install_sqlite_pragmas
from app.settings import Settings
from app.webhooks.fastsql import FastSqlite
from app.webhooks.processing import ProcessOutcome, process_event, process_event_sync

__all__ = ("AsyncIngest", "Ingest", "SqliteWriter", "WebhookIngestPlugin", "get_ingest")

log = structlog.get_logger()

STATE_KEY = "webhook_ingest"


class Ingest(Protocol):
    """Store one verified event and its effect; returns after the commit."""

    async def submit(self, event: Mapping[str, Any], payload: str) -> ProcessOutcome: ...

    async def close(self) -> None: ...


class AsyncIngest:
    """One async transaction per event; used on PostgreSQL."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def submit(self, event: Mapping[str, Any], payload: str) -> ProcessOutcome:
        async with self._sessions() as session, session.begin():
            return await process_event(session, event, payload=payload)

    async def close(self) -> None:
        return None


@dataclass(slots=True)
class _Job:
    event: Mapping[str, Any]
    payload: str
    future: asyncio.Future[ProcessOutcome]
    loop: asyncio.AbstractEventLoop
    outcome: ProcessOutcome | None = None
    error: BaseException | None = None


def sync_sqlite_engine(database_url: str) -> Engine:
    """A synchronous engine on the same file with the same pragmas as ``app.db.config``."""
    url = database_url.replace("sqlite+aiosqlite://", "sqlite+pysqlite://", 1)
    engine = create_engine(url, connect_args={**SQLITE_CONNECT_ARGS, "check_same_thread": False})
    install_sqlite_pragmas(engine)
    return engine


def _resolve(jobs: list[_Job]) -> None:
    """On the event loop: hand each request its outcome (or error) after the commit."""
    for job in jobs:
        if job.future.done():  # the request went away
            continue
        if job.error is not None:
            job.future.set_exception(job.error)
        else:
            assert job.outcome is not None
            job.future.set_result(job.outcome)


def _sqlite_connect(database_url: str) -> sqlite3.Connection:
    """The writer's own driver connection, with the pragmas of ``app.db.config``."""
    path = database_url.split("///", 1)[-1]
    connection = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000"):
        connection.execute(f"PRAGMA {pragma}")
    return connection


CHECKPOINT_SECONDS = 1.0


def _checkpointer(database_url: str, stop: threading.Event) -> None:
    """Copy the WAL back into the database off the writer's path.

    SQLite's automatic checkpoint runs inside the COMMIT that crosses 1,000 WAL pages, which
    stalls that batch (and every request in it) for tens of ms. The writer turns it off and
    this thread checkpoints PASSIVEly (never waits for, nor blocks, the writer) every second.
    """
    connection = _sqlite_connect(database_url)
    try:
        while not stop.wait(CHECKPOINT_SECONDS):
            try:
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error:
                log.warning("webhook.checkpoint_failed", exc_info=True)
    finally:
        connection.close()


class SqliteWriter:
    """The single SQLite writer thread with group commit (see the module docstring)."""

    def __init__(self, database_url: str, *, max_batch: int = 256) -> None:
        self._database_url = database_url
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._max_batch = max_batch
        self._thread = threading.Thread(target=self._run, name="webhook-writer", daemon=True)
        self._closed = False
        self._thread.start()

    async def submit(self, event: Mapping[str, Any], payload: str) -> ProcessOutcome:
        if self._closed:
            raise RuntimeError("webhook writer is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ProcessOutcome] = loop.create_future()
        self._queue.put(_Job(event, payload, future, loop))
        return await future

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join, 30)

    def _take_batch(self, first: _Job) -> tuple[list[_Job], bool]:
        batch = [first]
        while len(batch) < self._max_batch:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return batch, True
            batch.append(job)
        return batch, False

    def _run(self) -> None:
        conn = FastSqlite(_sqlite_connect(self._database_url))
        conn.exec("PRAGMA wal_autocheckpoint=0")
        stop_checkpoints = threading.Event()
        checkpoints = threading.Thread(
            target=_checkpointer,
            args=(self._database_url, stop_checkpoints),
            name="webhook-checkpoint",
            daemon=True,
        )
        checkpoints.start()
        try:
            stop = False
            while not stop:
                first = self._queue.get()
                if first is None:
                    break
                batch, stop = self._take_batch(first)
                self._process(conn, batch)
        finally:
            stop_checkpoints.set()
            checkpoints.join(10)
            conn.raw.close()

    def _process(self, conn: FastSqlite, batch: list[_Job]) -> None:
        try:
            conn.exec("BEGIN IMMEDIATE")
            try:
                for job in batch:
                    conn.exec("SAVEPOINT webhook_event")
                    try:
                        job.outcome = process_event_sync(conn, job.event, payload=job.payload)
                    except Exception as exc:  # this event alone rolls back; its request gets a 5xx
                        conn.exec("ROLLBACK TO webhook_event")
                        job.error = exc
                    conn.exec("RELEASE webhook_event")
                conn.exec("COMMIT")
            except BaseException:
                if conn.raw.in_transaction:
                    conn.exec("ROLLBACK")
                raise
        except Exception as exc:  # BEGIN or COMMIT failed: nobody's effect is stored
            log.exception("webhook.batch_commit_failed", size=len(batch))
            for job in batch:
                job.error = exc
        by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        for job in batch:
            by_loop.setdefault(job.loop, []).append(job)
        for loop, jobs in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, jobs)
            except RuntimeError:  # that loop has closed; its requests are gone
                continue


def get_ingest(app: Litestar) -> Ingest:
    """This app's ingest, made on first use (no await in between, so made once)."""
    ingest: Ingest | None = app.state.get(STATE_KEY)
    if ingest is not None:
        return ingest
    settings: Settings = app.state["settings"]
    if settings.is_sqlite:
        ingest = SqliteWriter(settings.database_url)
    else:
        from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig, SQLAlchemyPlugin

        config = app.plugins.get(SQLAlchemyPlugin).config[0]
        if not isinstance(config, SQLAlchemyAsyncConfig):
            raise TypeError("the webhook ingest needs the async SQLAlchemy config")
        ingest = AsyncIngest(config.get_engine())
    app.state[STATE_KEY] = ingest
    return ingest


async def _close_ingest(app: Litestar) -> None:
    ingest: Ingest | None = app.state.get(STATE_KEY)
    if ingest is not None:
        app.state[STATE_KEY] = None
        await ingest.close()


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


class WebhookIngestPlugin(InitPluginProtocol):
    """Process set-up for the webhook path: freezes the start-up heap (see
    :func:`_freeze_startup_heap`) and stops the SQLite writer thread (after its last commit)
    when the app shuts down."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.on_startup.append(_freeze_startup_heap)
        app_config.on_shutdown.append(_close_ingest)
        return app_config
