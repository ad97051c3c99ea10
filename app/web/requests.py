"""The app's request class: htmx details, and form bodies that cannot be decoded are the client's fault."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from litestar import Request
from litestar.datastructures import FormMultiDict
from litestar.exceptions import ClientException, InternalServerException
from litestar.plugins.htmx import HTMXRequest

__all__ = ["CSRF_FIELD", "ClientDisconnected", "StorefrontRequest", "form_texts"]

CSRF_FIELD = "_csrf_token"
"""Where Litestar's CSRF middleware looks for the token in a form body."""


class ClientDisconnected(ClientException):
    """The client hung up before its body arrived: nobody is left to answer, and it is not our fault."""

    status_code = 400


class StorefrontRequest(HTMXRequest):
    """Litestar decodes multipart fields with the part's charset and lets the error escape as a 500.

    The CSRF middleware reads the form before any handler (with this class, the app's), so a
    field of bytes that are not UTF-8, or a made-up ``charset``, is answered 400 here; so is a
    CSRF token sent as a file part, which the middleware would take for text and fail on.
    """

    async def form(self) -> FormMultiDict:
        try:
            form = await super().form()
        except (UnicodeDecodeError, LookupError) as exc:
            raise ClientException("the form could not be decoded") from exc
        if not all(isinstance(value, str) for value in form.getall(CSRF_FIELD, [])):
            raise ClientException("the CSRF token must be a text field")
        return form

    async def stream(self) -> AsyncGenerator[bytes, None]:
        """Litestar reports a client that hangs up mid-body as a 500 (and we would log a traceback
        for every connection a load generator drops); it is the client's doing, so a quiet 4xx."""
        try:
            async for chunk in super().stream():
                yield chunk
        except InternalServerException as exc:
            if exc.detail == "client disconnected prematurely":
                raise ClientDisconnected("the client disconnected before sending the whole body") from exc
            raise


async def form_texts(request: Request[Any, Any, Any], *names: str) -> dict[str, str]:
    """The named fields of a form body, trimmed; a missing field or a file part reads as ``""``."""
    form = await request.form()
    found: dict[str, str] = {}
    for name in names:
        value = form.get(name)
        found[name] = value.strip() if isinstance(value, str) else ""
    return found
