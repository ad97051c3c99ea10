"""Group commit for the money writes requests wait on: webhook events, debits, holds, key checks.

Each process has one writer that queues the operations its requests bring and commits them in
batches: it takes every operation queued (up to ``max_batch``), runs each (a synchronous
``op(conn)`` of ``app.money`` and friends) inside one transaction, COMMITs once (one fsync for
the batch), and only then resolves the requests' futures, so a 2xx always means "committed
durably". An operation that raises is rare (a bug, a transient error: expected refusals such
as an insufficient balance are results, written so that they change nothing), so the batch
carries no per-operation SAVEPOINT: when one raises, the batch is rolled back and run again
with a SAVEPOINT per operation (:func:`process_batch`), so that one alone rolls back and its
request gets the error.

Statements run through ``app.db.compiled.CompiledConnection`` (SQLAlchemy's own statements,
compiled once, on the connection's driver connection; its docstring gives the figures that
chose it over executing on ``Connection``) inside SQLAlchemy's transaction.

* SQLite (:class:`SqliteWriter`): one database file has one writer at a time anyway, and
  aiosqlite hands every statement to a thread and back (~1,300 transactions/s), so a single
  writer thread owns one synchronous connection. Other writers (checkout, reconciliation)
  queue on SQLite's lock with ``busy_timeout`` as usual.
* PostgreSQL (:class:`PostgresWriter`): a few writer lanes per process, each an asyncio task
  with its own pooled connection, so batches overlap their round trips. One transaction per
  event cost a BEGIN and a COMMIT (and an fsync) per event and SQLAlchemy's full execution
  path per statement: 430 events/s on two workers here, against the lanes' figure in README.
  Locks are taken as ever (row locks, the payment intent's advisory lock); a deadlock between
  two lanes' batches fails one, which is then run again with a SAVEPOINT per operation.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import structlog
from sqlalchemy import Connection, Engine, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.compiled import CompiledConnection
from app.db.config import WRITER_PRAGMA, sync_sqlite_engine
from app.db.sql import SavepointConnection

__all__ = (
    "Job",
    "Operation",
    "PostgresWriter",
    "SqliteWriter",
    "Task",
    "Writer",
    "checkpointer",
    "job",
    "process_batch",
    "writer_connection",
)

log = structlog.get_logger()

T = TypeVar("T")
Operation = Callable[[SavepointConnection], T]
"""One unit of work: runs on the writer's connection inside the batch's transaction."""


class Writer(Protocol):
    """Run one operation in the next batch; returns (or raises) after its COMMIT."""

    async def call(self, operation: Operation[T]) -> T: ...

    async def close(self) -> None: ...


@dataclass(slots=True)
class Task(Generic[T]):
    """One operation of a batch and what became of it."""

    operation: Operation[T]
    outcome: T | None = None
    error: BaseException | None = None
    done: bool = False


@dataclass(slots=True)
class Job(Task[T]):
    """A task a request waits for on its event loop."""

    future: asyncio.Future[T] = field(kw_only=True)
    loop: asyncio.AbstractEventLoop = field(kw_only=True)


def process_batch(conn: Connection, batch: Sequence[Task[Any]]) -> None:
    """Run a batch in one transaction; if anything raises, again with one SAVEPOINT per operation.

    What raises is a database error or a bug (refusals are results), so that operation alone
    fails. What the first attempt logged is logged again by the second (it was rolled back).
    """
    try:
        with conn.begin():
            fast = CompiledConnection(conn)
            for item in batch:
                item.outcome, item.done = item.operation(fast), True
        return
    except Exception:  # rolled back: find the culprit below
        log.info("writer.batch_retried_one_by_one", size=len(batch), exc_info=True)
    try:
        with conn.begin():
            fast = CompiledConnection(conn)
            for item in batch:
                item.outcome, item.error, item.done = None, None, False
                try:
                    with conn.begin_nested():
                        item.outcome, item.done = item.operation(fast), True
                except Exception as error:  # this one alone rolled back; its request gets the error
                    item.error = error
    except Exception as error:  # BEGIN or COMMIT failed: nobody's work is stored
        log.exception("writer.batch_commit_failed", size=len(batch))
        for item in batch:
            item.outcome, item.error, item.done = None, error, False


def _resolve(jobs: list[Job[Any]]) -> None:
    """On the event loop: hand each request its outcome (or error) after the commit."""
    for item in jobs:
        if item.future.done():  # the request went away
            continue
        if item.error is not None:
            item.future.set_exception(item.error)
        elif item.done:
            item.future.set_result(item.outcome)
        else:
            item.future.set_exception(RuntimeError("the batch ended without an outcome"))


def _fail_unanswered(jobs: list[Job[Any]], reason: str) -> None:
    """Jobs that got neither an outcome nor an error: their requests answer 5xx (Stripe retries)."""
    for item in jobs:
        if not item.done and item.error is None:
            item.error = RuntimeError(reason)


def _answer_all(batch: list[Job[Any]]) -> None:
    """From any thread, after the commit: wake each request on its own event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Job[Any]]] = {}
    for job in batch:
        by_loop.setdefault(job.loop, []).append(job)
    for loop, jobs in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve, jobs)
        except RuntimeError:  # that loop has closed; its requests are gone
            continue


def job(operation: Operation[T]) -> Job[T]:
    """A job for ``operation``, answered on the running event loop."""
    loop = asyncio.get_running_loop()
    return Job(operation, future=loop.create_future(), loop=loop)


CHECKPOINT_SECONDS = 1.0


def checkpointer(engine: Engine, stop: threading.Event) -> None:
    """Copy the WAL back into the database off the writer's path.

    SQLite's automatic checkpoint runs inside the COMMIT that crosses 1,000 WAL pages, which
    stalls that batch (and every request in it) for tens of ms. The writer turns it off and
    this thread checkpoints PASSIVEly (never waits for, nor blocks, the writer) every second.
    """
    # The driver connection, outside any transaction: a checkpoint must not take the write lock
    # that SQLAlchemy's BEGIN IMMEDIATE would.
    connection = engine.raw_connection()
    try:
        while not stop.wait(CHECKPOINT_SECONDS):
            cursor = connection.cursor()
            try:
                cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
                cursor.fetchall()
            except engine.dialect.loaded_dbapi.Error:
                log.warning("writer.checkpoint_failed", exc_info=True)
            finally:
                cursor.close()
    finally:
        connection.close()


@contextlib.contextmanager
def writer_connection(database_url: str) -> Iterator[Connection]:
    """The SQLite writer's connection, with its checkpoint thread running beside it."""
    engine = sync_sqlite_engine(database_url)
    stop_checkpoints = threading.Event()
    checkpoints = threading.Thread(
        target=checkpointer, args=(engine, stop_checkpoints), name="money-checkpoint", daemon=True
    )
    try:
        with engine.connect() as conn:
            with conn.begin():
                conn.execute(text(f"PRAGMA {WRITER_PRAGMA}"))  # the checkpointer's job now
            checkpoints.start()
            yield conn
    finally:
        stop_checkpoints.set()
        if checkpoints.is_alive():
            checkpoints.join(10)
        engine.dispose()


class SqliteWriter:
    """The single SQLite writer thread with group commit (see the module docstring)."""

    def __init__(self, database_url: str, *, max_batch: int = 256) -> None:
        self._database_url = database_url
        self._queue: queue.SimpleQueue[Job[Any] | None] = queue.SimpleQueue()
        self._max_batch = max_batch
        self._thread = threading.Thread(target=self._run, name="money-writer", daemon=True)
        self._closed = False
        self._thread.start()

    async def call(self, operation: Operation[T]) -> T:
        if self._closed:
            raise RuntimeError("the money writer is closed")
        item = job(operation)
        self._queue.put(item)
        return await item.future

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join, 30)
        # A request that passed the closed check as we closed may have queued after the stop.
        left = []
        with contextlib.suppress(queue.Empty):
            while True:
                item = self._queue.get_nowait()
                if item is not None:
                    left.append(item)
        _fail_unanswered(left, "the money writer closed")
        _answer_all(left)

    def _take_batch(self, first: Job[Any]) -> tuple[list[Job[Any]], bool]:
        batch = [first]
        while len(batch) < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _run(self) -> None:
        with writer_connection(self._database_url) as conn:
            stop = False
            while not stop:
                first = self._queue.get()
                if first is None:
                    break
                batch, stop = self._take_batch(first)
                process_batch(conn, batch)
                _answer_all(batch)


class PostgresWriter:
    """Writer lanes on the app's async engine (see the module docstring)."""

    close_wait: float = 30.0
    """Seconds ``close`` lets the lanes finish what is queued before failing the rest."""

    def __init__(self, engine: AsyncEngine, *, lanes: int = 4, max_batch: int = 64) -> None:
        self._engine = engine
        self._queue: asyncio.Queue[Job[Any]] = asyncio.Queue()
        self._lanes_wanted = lanes
        self._max_batch = max_batch
        self._lanes: list[asyncio.Task[None]] = []
        self._closed = False

    async def call(self, operation: Operation[T]) -> T:
        if self._closed:
            raise RuntimeError("the money writer is closed")
        if not self._lanes:  # started on the serving loop, at the first call
            for _ in range(self._lanes_wanted):
                self._start_lane()
        item = job(operation)
        self._queue.put_nowait(item)
        return await item.future

    def _start_lane(self) -> None:
        # A context of its own: not the first request's (its request id would stamp every log line).
        lane = asyncio.create_task(self._lane(), name="money-lane", context=contextvars.Context())
        lane.add_done_callback(self._lane_ended)
        self._lanes.append(lane)

    def _lane_ended(self, lane: asyncio.Task[None]) -> None:
        """A lane only ends when cancelled at close; one that died is logged and replaced."""
        self._lanes.remove(lane)
        if not lane.cancelled() and not self._closed:
            log.error("writer.lane_died", exc_info=lane.exception())
            self._start_lane()

    async def _lane(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                async with self._engine.connect() as conn:
                    await conn.run_sync(process_batch, batch)
            except Exception as error:  # no connection: nobody's work is stored
                log.exception("writer.batch_connect_failed", size=len(batch))
                for item in batch:
                    item.outcome, item.error, item.done = None, error, False
            finally:  # cancelled mid-batch too: every request gets an answer
                _fail_unanswered(batch, "the money writer stopped")
                _resolve(batch)
                for _ in batch:
                    self._queue.task_done()

    async def close(self) -> None:
        """Stop taking work; the lanes finish what was queued, then every request left is failed."""
        self._closed = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), self.close_wait)
        lanes = list(self._lanes)
        for lane in lanes:
            lane.cancel()
        for lane in lanes:
            with contextlib.suppress(asyncio.CancelledError):
                await lane
        left = []
        while not self._queue.empty():
            left.append(self._queue.get_nowait())
        _fail_unanswered(left, "the money writer closed")
        _resolve(left)
