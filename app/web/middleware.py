"""Pure-ASGI middleware: cheap enough for the hot pricing page (no Request objects made)."""

from __future__ import annotations

import secrets

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app import i18n
from app.web.raw import header_text, parse_cookies


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    """Give every request an id (or keep the proxy's ``X-Request-ID``), bind it to every log line."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        incoming = header_text(scope, b"x-request-id")
        request_id = incoming if incoming and len(incoming) <= 64 else secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await app(scope, receive, send_with_id)

    return middleware


def locale_middleware(app: ASGIApp) -> ASGIApp:
    """Choose the language from the switcher's cookie, else ``Accept-Language``.

    Every request passes here first, so a malformed ``Cookie`` header must not raise
    (``http.cookies`` does on a name like ``a<b``): ``parse_cookies`` skips what it cannot read.
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            cookie_value: str | None = None
            cookie_header = header_text(scope, b"cookie")
            if cookie_header and i18n.COOKIE in cookie_header:
                cookie_value = parse_cookies(cookie_header).get(i18n.COOKIE)
            code = i18n.negotiate(cookie_value, header_text(scope, b"accept-language"))
            i18n.set_locale(code)
            scope.setdefault("state", {})["locale"] = code
        await app(scope, receive, send)

    return middleware
