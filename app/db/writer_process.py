"""The SQLite money writer in a child process of its own: group commit without sharing the GIL.

Measured reason (``bench/webhook_bench.py``, one worker, quiet machine): with the writer as a
thread, the event loop and the writer took turns on one GIL — the loop alone answers 15,437
webhook deliveries/s and the writer alone runs ~5,400 events/s, but together they reached
2,992/s, the loop spending most of its CPU handing the GIL back and forth (each SQLite
statement releases it). A child process runs the same batches (``app.db.writer.process_batch``)
on its own core; the loop only pickles each operation and reads the answers.

The protocol is a ``multiprocessing`` pipe: the loop sends ``[(job id, pickled operation),
...]`` once per loop iteration (the operations queued in it), the child takes everything that
is waiting (up to ``max_batch``), runs it in one transaction, COMMITs, and sends back ``[(job
id, done, outcome, error), ...]``, which the loop reads when the pipe is readable (no thread on
this side). A 2xx still means committed: a request waits for its answer from the child.

Operations must pickle (a module-level function, a ``functools.partial`` of one): the webhook's
events and the rejection counts do. One that does not (the host API's closures) runs on an
in-process writer thread (:class:`app.db.writer.SqliteWriter`) instead, which takes SQLite's
write lock in turn with the child (``busy_timeout``), as two replicas' writers would.

If the child dies, the requests waiting on it get an error (5xx: Stripe retries, and nothing
half-done was committed) and the next call starts a new child.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import multiprocessing
import pickle
import sys
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, TypeVar

import structlog
from sqlalchemy import Connection as SqlaConnection

from app.db.group_commit import Operation, SqliteWriter, Task, process_batch, writer_connection

__all__ = ("ProcessWriter",)

log = structlog.get_logger()

T = TypeVar("T")

STOP = b"stop"
"""What the parent sends to end the child after what is queued."""


class WriterGone(RuntimeError):
    """The writer process ended before answering: the request is not known to be stored (5xx)."""


def _configure_child_logging(level: str) -> None:
    """The child's log lines go to stderr as JSON, like the app's (Litestar configures those)."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(process="money-writer")


def _take(pipe: Connection, first: bytes, max_batch: int) -> tuple[list[tuple[int, bytes]], bool]:
    """The jobs in ``first`` and in every message already waiting, up to ``max_batch``."""
    jobs: list[tuple[int, bytes]] = pickle.loads(first)  # noqa: S301 - the parent's, private pipe
    while len(jobs) < max_batch and pipe.poll(0):
        message = pipe.recv_bytes()
        if message == STOP:
            return jobs, True
        jobs.extend(pickle.loads(message))  # noqa: S301 - the parent's, private pipe
    return jobs, False


def child_main(pipe: Connection, database_url: str, max_batch: int, log_level: str) -> None:
    """The writer process: batches from the pipe, one transaction and COMMIT each, answers back."""
    _configure_child_logging(log_level)
    with writer_connection(database_url) as conn:
        stop = frozen = False
        while not stop:
            try:
                first = pipe.recv_bytes()
                if first == STOP:
                    return
                jobs, stop = _take(pipe, first, max_batch)
                pipe.send_bytes(_encoded(_run_jobs(conn, jobs)))
            except (EOFError, BrokenPipeError):  # the server went away: what committed stays
                return
            if not frozen:
                # As the server does at start-up (app.db.writer): what the first batch imported
                # lives as long as the process, and a full collection walking it stalled every
                # request of the batch in progress.
                gc.collect()
                gc.freeze()
                frozen = True


Answer = tuple[int, bool, Any, BaseException | None]
"""``(job id, done, outcome, error)``."""


def _run_jobs(conn: SqlaConnection, jobs: list[tuple[int, bytes]]) -> list[Answer]:
    """One batch, after its COMMIT: each job's answer."""
    tasks: list[Task[Any]] = []
    for _, blob in jobs:
        try:
            tasks.append(Task(pickle.loads(blob)))  # noqa: S301 - the parent's, over a private pipe
        except Exception as error:  # a class the child cannot import: that job alone fails
            tasks.append(Task(_unrunnable, error=error))
    process_batch(conn, [task for task in tasks if task.error is None])
    return [
        (job_id, task.done and task.error is None, task.outcome, task.error)
        for (job_id, _), task in zip(jobs, tasks, strict=True)
    ]


def _encoded(answers: list[Answer]) -> bytes:
    """The batch's answers pickled at once (an outcome is pickled once, on its way to the parent).

    An error must survive the parent's unpickling too (an exception class whose constructor wants
    other arguments does not): a failed job's error is tried both ways, and one that does not
    come back, or an outcome that does not pickle, is told as an error of its own.
    """
    answers = [_portable_error(answer) if answer[3] is not None else answer for answer in answers]
    try:
        return pickle.dumps(answers, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        portable = [_portable_error(answer) for answer in answers]
        return pickle.dumps(portable, protocol=pickle.HIGHEST_PROTOCOL)


def _portable_error(answer: Answer) -> Answer:
    """``answer`` if it pickles and unpickles, else its job's failure as a RuntimeError naming it."""
    job_id, _done, _outcome, error = answer
    try:
        pickle.loads(pickle.dumps(answer))  # noqa: S301 - our own bytes
    except Exception as unpicklable:
        failure = error if error is not None else unpicklable
        return (job_id, False, None, RuntimeError(f"{type(failure).__name__}: {failure}"))
    return answer


def _unrunnable(_conn: Any) -> None:
    raise RuntimeError("this operation could not be unpickled in the writer process")


@dataclass
class _Child:
    process: Any
    pipe: Connection
    waiting: dict[int, asyncio.Future[Any]] = field(default_factory=dict)
    outbox: list[tuple[int, bytes]] = field(default_factory=list)
    flush_scheduled: bool = False
    gone: bool = False


class ProcessWriter:
    """The money writer of a SQLite database, in a child process (see the module docstring)."""

    def __init__(self, database_url: str, *, max_batch: int = 256, log_level: str = "INFO") -> None:
        self._database_url = database_url
        self._max_batch = max_batch
        self._log_level = log_level
        self._ids = itertools.count(1)
        self._child: _Child | None = None
        self._local: SqliteWriter | None = None
        self._unpicklable: set[str] = set()
        self._closed = False

    # --- the parent's side -----------------------------------------------------------------

    def start(self) -> None:
        """Start the child now (at app start-up), so the first request does not wait for it."""
        if self._child is None or self._child.gone:
            self._child = self._spawn()

    def _spawn(self) -> _Child:
        context = multiprocessing.get_context("spawn")  # never fork a process with threads and a loop
        parent_end, child_end = context.Pipe(duplex=True)
        process = context.Process(
            target=child_main,
            args=(child_end, self._database_url, self._max_batch, self._log_level),
            name="storefront-money-writer",
            daemon=True,
        )
        process.start()
        child_end.close()
        child = _Child(process, parent_end)
        asyncio.get_running_loop().add_reader(parent_end.fileno(), self._read_answers, child)
        return child

    async def call(self, operation: Operation[T]) -> T:
        if self._closed:
            raise RuntimeError("the money writer is closed")
        try:
            blob = pickle.dumps(operation, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, AttributeError, TypeError):  # a closure: run it in this process
            self._warn_unpicklable(operation)
            if self._local is None:
                self._local = SqliteWriter(self._database_url, max_batch=self._max_batch)
            return await self._local.call(operation)
        self.start()
        child = self._child
        assert child is not None
        job_id = next(self._ids)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        child.waiting[job_id] = future
        child.outbox.append((job_id, blob))
        if not child.flush_scheduled:  # one message for every call of this loop iteration
            child.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush, child)
        return await future

    def _warn_unpicklable(self, operation: Any) -> None:
        """Once per kind of operation: the thread it runs on is a second SQLite writer, which
        waits for (and holds up) the child's batches, so each such operation is worth a look."""
        name = getattr(getattr(operation, "func", operation), "__qualname__", type(operation).__name__)
        if name not in self._unpicklable:
            self._unpicklable.add(name)
            log.warning("writer.operation_not_picklable", operation=name)

    def _flush(self, child: _Child) -> None:
        child.flush_scheduled = False
        jobs, child.outbox = child.outbox, []
        if child.gone:
            self._fail(child, [job_id for job_id, _ in jobs])
            return
        try:
            # Blocking only while the pipe's buffer is full, i.e. while the child is busy with
            # a batch (it drains the pipe before each one).
            child.pipe.send_bytes(pickle.dumps(jobs, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            self._lost(child)

    def _read_answers(self, child: _Child) -> None:
        try:
            while child.pipe.poll(0):
                answers = pickle.loads(child.pipe.recv_bytes())  # noqa: S301 - our child's
                for job_id, done, outcome, error in answers:
                    future = child.waiting.pop(job_id, None)
                    if future is None or future.done():  # the request went away
                        continue
                    if done:
                        future.set_result(outcome)
                    else:
                        future.set_exception(error or RuntimeError("the batch ended without an outcome"))
        except (EOFError, OSError):
            self._lost(child)
        except Exception:  # answers that do not unpickle: nothing more can be read from this child
            log.exception("writer.answers_unreadable")
            self._lost(child)

    def _fail(self, child: _Child, job_ids: list[int]) -> None:
        for job_id in job_ids:
            future = child.waiting.pop(job_id, None)
            if future is not None and not future.done():
                future.set_exception(WriterGone("the money writer process ended"))

    def _lost(self, child: _Child) -> None:
        """The child died (or its pipe broke, or was closed): every request waiting on it fails; a
        new child comes with the next call."""
        if child.gone:
            return
        child.gone = True
        if not self._closed:
            log.error("writer.process_lost", pid=child.process.pid, waiting=len(child.waiting))
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_reader(child.pipe.fileno())
        self._fail(child, list(child.waiting))
        with contextlib.suppress(OSError):
            child.pipe.close()
        if self._child is child:
            self._child = None

    async def close(self) -> None:
        """Finish what was sent, stop the child, fail whatever is left."""
        if self._closed:
            return
        self._closed = True
        child = self._child
        if child is not None and not child.gone:
            if child.outbox:
                self._flush(child)
            if child.waiting:
                await asyncio.wait(list(child.waiting.values()), timeout=30)
            with contextlib.suppress(OSError):
                child.pipe.send_bytes(STOP)
            await asyncio.to_thread(child.process.join, 10)
            if child.process.is_alive():
                child.process.kill()
            self._lost(child)  # whatever still waits fails; the pipe is closed
        if self._local is not None:
            await self._local.close()
