"""Pure-ASGI middleware: cheap enough for the hot pricing page (no Request objects made)."""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from app import i18n
from app.web.raw import header_text, parse_cookies


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
