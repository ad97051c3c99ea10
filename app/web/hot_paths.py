"""The routes answered ahead of the middleware stack: money writes and reads that come by the thousand.

Measured reason (``bench/webhook_bench.py``, py-spy on the server, quiet machine): a webhook
event cost ~375 µs on the event loop, of which ~140 µs were the middleware stack it never needed
(Prometheus's request metrics alone ~45 µs, then the session, CSRF, compression, transaction and
read-only layers and their ``send`` wrappers), while the SQLite writer's thread needs the same
GIL for its own ~200 µs. A hot route registered here runs its raw ASGI handler as soon as the
request id is bound (the first middleware): its answers still carry the security headers
(Litestar's ``before_send`` wraps ``send`` outside every middleware) and ``X-Request-ID``; it
counts its own metrics.

Only exact (method, path) pairs and the host API's few path shapes are matched here; whatever a
hot handler does not recognise it hands on (``next_app``), so Litestar still answers the rest —
its 405s, 404s and problem details included.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.web.raw import header_text

__all__ = ["HotHandler", "HotRoute", "bind_request_id", "hot_paths"]

HotHandler = Callable[[Scope, Receive, Send, ASGIApp], Awaitable[None]]
"""``(scope, receive, send, next_app)``: answer, or pass the request on to ``next_app``."""


@dataclass(frozen=True, slots=True)
class HotRoute:
    """``method`` and a path: ``prefix`` exactly when ``suffix`` is None, else ``prefix<x>suffix``."""

    method: str
    prefix: str
    handler: HotHandler
    suffix: str | None = None

    def matches(self, method: str, path: str) -> bool:
        if method != self.method:
            return False
        if self.suffix is None:
            return path == self.prefix
        return (
            len(path) > len(self.prefix) + len(self.suffix)
            and path.startswith(self.prefix)
            and path.endswith(self.suffix)
            and "/" not in path[len(self.prefix) : len(path) - len(self.suffix)]
        )


_ids = random.Random(secrets.randbits(64))
"""Request ids only tell log lines apart; drawing them from ``secrets`` (a getrandom call each)
cost ~7% of the event loop's time per webhook."""


def bind_request_id(scope: Scope) -> tuple[bytes, bytes]:
    """Keep the proxy's ``X-Request-ID`` (at most 64 characters) or make one; bind it to every log line."""
    incoming = header_text(scope, b"x-request-id")
    request_id = incoming if incoming and len(incoming) <= 64 else f"{_ids.getrandbits(64):016x}"
    scope.setdefault("state", {})["request_id"] = request_id
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    return (b"x-request-id", request_id.encode())


def _with_header(send: Send, header: tuple[bytes, bytes]) -> Send:
    async def send_with_id(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), header]
        await send(message)

    return send_with_id


def hot_paths(routes: Sequence[HotRoute]) -> Callable[[ASGIApp], ASGIApp]:
    """The first middleware of all: gives every request its id, then runs a matching hot route or
    the rest of the stack."""

    def build(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            send = _with_header(send, bind_request_id(scope))
            method, path = scope["method"], scope["path"]
            for route in routes:
                if route.matches(method, path):
                    await route.handler(scope, receive, send, app)
                    return
            await app(scope, receive, send)

        return middleware

    return build
