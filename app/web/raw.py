"""Plumbing for the raw ASGI fast paths, which answer before Litestar makes a ``Request``.

They read headers and cookies straight from the scope the way Litestar does (the first header
of a name; cookies split on ``;``, the last of a name wins), so a fast path and the full handler
it stands in for agree on who the visitor is. Unlike ``http.cookies`` nothing here raises on
what a browser or a bot may send: a malformed cookie is skipped, never a 500.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, cast

from litestar.types import Message, Receive, Scope, Send

__all__ = [
    "FLASH_COOKIE",
    "SESSION_COOKIE",
    "accepts_gzip",
    "cookies",
    "header",
    "header_text",
    "live_session_id",
    "parse_cookies",
    "read_body",
    "replaying",
    "send_bytes",
]

SESSION_COOKIE: Final = "session"
"""The session cookie's name: the session middleware sets it, the fast paths look for it."""
FLASH_COOKIE: Final = "flash"
"""A signed-out visitor's flash messages (app/web/sessions.py); a page showing them is not cached."""
CLEARED_SESSION: Final = "null"
"""What Litestar's session middleware writes into the cookie when it drops a session."""


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of the lower-case header ``name``, as Litestar's ``Headers.get`` reads it."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def header_text(scope: Scope, name: bytes) -> str | None:
    """``header`` as text; latin-1 maps every byte, so odd bytes cannot raise."""
    value = header(scope, name)
    return value.decode("latin-1") if value is not None else None


def accepts_gzip(scope: Scope) -> bool:
    """Whether the client's ``Accept-Encoding`` names gzip (q-values are not weighed, as before)."""
    value = header(scope, b"accept-encoding")
    return value is not None and b"gzip" in value


def parse_cookies(raw: bytes | str) -> dict[str, str]:
    """``name=value`` pairs of a ``Cookie`` header; a chunk without ``=`` is skipped.

    Any name is accepted as written (``a<b`` too), since only the names we look up matter.
    """
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    found: dict[str, str] = {}
    for chunk in text.split(";"):
        name, sep, value = chunk.partition("=")
        if sep:
            found[name.strip()] = value.strip().strip('"')
    return found


def cookies(scope: Scope) -> dict[str, str]:
    """The request's cookies, from its first ``Cookie`` header (as Litestar reads them)."""
    raw = header(scope, b"cookie")
    return parse_cookies(raw) if raw else {}


def live_session_id(value: str | None) -> str | None:
    """A session cookie's id, or ``None`` when there is none or the middleware cleared it."""
    return value if value and value != CLEARED_SESSION else None


async def send_bytes(
    send: Send,
    status: int,
    headers: Iterable[tuple[bytes, bytes]],
    body: bytes = b"",
    *,
    head: bool = False,
    length: bool = True,
) -> None:
    """Answer in two messages; ``head`` keeps the body's length but sends no body.

    ``length=False`` leaves out ``Content-Length`` (a 304 describes no body of its own).
    """
    out = list(headers)
    if length:
        out.append((b"content-length", str(len(body)).encode()))
    await send(_message({"type": "http.response.start", "status": status, "headers": out}))
    await send(_message({"type": "http.response.body", "body": b"" if head else body, "more_body": False}))


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it is known to exceed ``limit`` bytes.

    Raises :class:`ConnectionError` when the client hangs up first.
    """
    declared = header_text(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("client went away")
        chunk: bytes = message.get("body", b"")  # type: ignore[assignment]
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` (already read) once, then what the client sends next."""
    given = False

    async def replay() -> Any:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return cast("Receive", replay)


def _message(message: dict[str, Any]) -> Message:
    """Raw ASGI messages are plain dicts; one cast keeps the calls readable."""
    return cast("Message", message)
