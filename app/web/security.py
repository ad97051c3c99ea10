"""Security headers on every response, and the bearer token guarding operators' endpoints.

The headers are added by a ``before_send`` hook: Litestar runs it on every message the app
sends, so it covers what no middleware sees (404s for unknown paths, answered before the
middleware stack) and what bypasses Litestar's responses (the raw ASGI fast paths, ``/static``,
the mounted sandbox). The header bytes are built once per app; a request only extends a list.
"""

from __future__ import annotations

import hmac
from typing import Any, Final

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import BeforeMessageSendHookHandler, Message, Scope

from app.sandbox.styles import STYLE_CSP_SOURCE
from app.settings import Settings

__all__ = ["content_security_policy", "metrics_guard", "security_headers", "security_headers_hook"]

HSTS: Final = "max-age=63072000; includeSubDomains"
"""Two years; production only, since development is served over plain http."""


def content_security_policy(settings: Settings) -> str:
    """Same-origin everything, no inline script; the mounted sandbox's one inline style by hash.

    ``form-action`` is left out on purpose: the buy form's answer redirects to Stripe's hosted
    Checkout on another origin, and browsers apply ``form-action`` to that redirect too.
    """
    styles = "'self'" + (f" {STYLE_CSP_SOURCE}" if settings.sandbox_mounted else "")
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            f"style-src {styles}",
            "img-src 'self' data:",
            "object-src 'none'",
            "base-uri 'self'",
            "frame-ancestors 'none'",
        )
    )


def security_headers(settings: Settings) -> tuple[tuple[bytes, bytes], ...]:
    """The raw headers every response carries."""
    headers = [
        (b"content-security-policy", content_security_policy(settings).encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"strict-origin-when-cross-origin"),
        (b"x-frame-options", b"DENY"),  # frame-ancestors for browsers that predate it
    ]
    if settings.is_production:
        headers.append((b"strict-transport-security", HSTS.encode()))
    return tuple(headers)


def security_headers_hook(settings: Settings) -> BeforeMessageSendHookHandler:
    """A ``before_send`` hook adding ``security_headers`` to each response's start message."""
    extra = security_headers(settings)

    async def add_headers(message: Message, scope: Scope) -> None:
        if message["type"] == "http.response.start":
            headers: Any = message.get("headers")
            message["headers"] = [*headers, *extra] if headers else list(extra)

    return add_headers


def metrics_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Operators only: ``Authorization: Bearer <STOREFRONT_METRICS_TOKEN>``.

    Without a token development stays open (as before) and production answers 404, so a
    forgotten setting hides the endpoints instead of publishing them.
    """
    settings: Settings = connection.app.state["settings"]
    token = settings.metrics_token
    if not token:
        if settings.is_production:
            raise NotFoundException()
        return
    scheme, _sep, given = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise NotAuthorizedException(headers={"WWW-Authenticate": "Bearer"})
