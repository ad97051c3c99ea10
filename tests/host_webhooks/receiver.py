"""A host application for the tests: a raw ASGI app that checks every webhook with ``verify_signature``.

Served by uvicorn on a free port (``tests.support.servers.serve_in_thread``). Each path is one
endpoint with its own secret (set once the shop made it); ``fail_first`` makes it answer 500 to
the first N calls of each event, and ``delay`` keeps each request open a while (so concurrent
deliverers overlap).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from app.host_webhooks.signature import SignatureVerificationError, verify_signature


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: bytes
    event: dict[str, Any] | None
    """The verified event, or None when verification failed."""
    error: str | None
    answered: int


@dataclass
class Receiver:
    secrets: dict[str, str] = field(default_factory=dict)
    """Path -> the endpoint's ``whsec_`` secret."""
    fail_first: int = 0
    delay: float = 0.0
    delays: dict[str, float] = field(default_factory=dict)
    """Path -> seconds that path keeps each request open (over ``delay``)."""
    calls: list[Call] = field(default_factory=list)
    _seen: Counter[tuple[str, str]] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    released: threading.Event = field(default_factory=threading.Event)
    """Set when the test is done: requests held open by a delay are let go (the server stops at once)."""

    async def _hold(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        # A threading.Event: the test sets it from its own thread, outside this server's loop.
        while not self.released.is_set() and (left := end - time.monotonic()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(min(0.05, left))

    def verified(self, path: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [c.event for c in self.calls if c.event is not None and path in (None, c.path)]

    def rejected(self) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.event is None]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path = scope["path"]
        if path == "/healthz":
            await self._answer(send, 200, b"ok")
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if self.delays.get(path, self.delay):
            await self._hold(self.delays.get(path, self.delay))
        event: dict[str, Any] | None = None
        error: str | None = None
        try:
            event = verify_signature(
                body, headers.get("storefront-signature", ""), self.secrets.get(path, "")
            )
        except SignatureVerificationError as exc:
            error = str(exc)
        with self._lock:
            key = (path, headers.get("storefront-event-id", ""))
            self._seen[key] += 1
            failing = self._seen[key] <= self.fail_first
            status = 400 if error else 500 if failing else 200
            self.calls.append(Call(path, headers, body, event, error, status))
        await self._answer(send, status, (error or ("try later" if failing else "ok")).encode())

    @staticmethod
    async def _answer(send: Any, status: int, body: bytes) -> None:
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": body})
