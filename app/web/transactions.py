"""Finish the request's database transaction before the session is saved.

The SQLAlchemy plugin commits in ``before_send``, which runs *outside* every middleware, so
the session middleware used to write the session store first. On SQLite (one writer, and
``BEGIN IMMEDIATE`` takes the write lock) that store write waits for the request's own open
transaction: a self-deadlock. Placed innermost, this middleware runs the plugin's own
commit-or-rollback handler at ``http.response.start``; the plugin's later call then finds no
session and does nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar.enums import ScopeType
from litestar.middleware import DefineMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.db.config import READ_ONLY
from app.db.loop_reads import THREAD_READS

FinishHandler = Callable[[Message, Scope], Awaitable[None]]


def _commit_first(app: ASGIApp, finish: FinishHandler) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return

        async def send_after_commit(message: Message) -> None:
            if message["type"] == "http.response.start":
                await finish(message, scope)
            await send(message)

        await app(scope, receive, send_after_commit)

    return middleware


READ_ONLY_OPT = "read_only"
"""Route option: ``opt={"read_only": True}`` on a handler that never writes to the database."""

LONG_READS_OPT = "long_reads"
"""Route (or router) option beside ``read_only``: its reads may take SQLite long (whole-table counts,
searches, exports), so they stay on aiosqlite's thread (``app.db.loop_reads.THREAD_READS``)
instead of the event loop. The admin console's router sets it."""


def read_only_requests(app: ASGIApp) -> ASGIApp:
    """Begin a read-only route's SQLite transactions DEFERRED (``app.db.config.READ_ONLY``).

    Placed outside the session middleware, so the session read is covered too. Under a
    webhook burst the writer holds SQLite's write lock almost all the time; a page that only
    reads then waited for it at every BEGIN IMMEDIATE (``/account`` p99 1.35 s).
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        handler = scope.get("route_handler")
        if handler is None or not handler.opt.get(READ_ONLY_OPT):
            await app(scope, receive, send)
            return
        token = READ_ONLY.set(True)
        long_reads = THREAD_READS.set(bool(handler.opt.get(LONG_READS_OPT)))
        try:
            await app(scope, receive, send)
        finally:
            THREAD_READS.reset(long_reads)
            READ_ONLY.reset(token)

    return middleware


def commit_before_session(alchemy: Any) -> DefineMiddleware:
    """Middleware running the alchemy config's ``before_send_handler`` before sessions are saved."""
    finish = alchemy.before_send_handler
    if not callable(finish):
        raise TypeError("the SQLAlchemy config has no before_send_handler to run")
    return DefineMiddleware(_commit_first, finish=finish)
