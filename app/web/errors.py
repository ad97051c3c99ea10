"""Error pages in the buyer's language: HTML for people, JSON for machines."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import structlog
from litestar import HttpMethod, MediaType, Request, Response, route
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
)
from litestar.response import Template
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from app import i18n
from app.i18n import gettext as _
from app.web.transactions import READ_ONLY_OPT

log = structlog.get_logger()


def _wants_html(request: Request[Any, Any, Any]) -> bool:
    if request.url.path.startswith(("/webhooks/", "/healthz", "/api/", "/sandbox/v1")):
        return False
    accept = request.headers.get("accept", "")
    return "text/html" in accept or "*/*" in accept or not accept


def _use_buyer_locale(request: Request[Any, Any, Any]) -> None:
    """Choose the page language here when ``locale_middleware`` never ran.

    A path no route matches is answered before the middleware stack, so a 404 would
    otherwise always be English.
    """
    if "locale" in request.scope.get("state", {}):
        return
    code = i18n.negotiate(request.cookies.get(i18n.COOKIE), request.headers.get("accept-language"))
    i18n.set_locale(code)


def _message(status: int, detail: str) -> str:
    """Plain words for the common statuses; the detail only where we wrote it for people."""
    if status == 404:
        return _("We could not find that page.")
    if status == 403 and "CSRF" in detail:
        return _(
            "Your form has expired or was not sent from this site. Please reload the page and try again."
        )
    if status == 403:
        return _("You are not allowed to do that.")
    if status == 401:
        return _("Please sign in first.")
    if status == 413:
        return _("What you sent is too large.")
    if status == 429:
        return _("Too many attempts. Please wait a minute and try again.")
    if status == 405:
        return _("That action is not available here.")
    if status >= 500:
        return _("Something went wrong on our side. Please try again in a moment.")
    return _("We could not understand that request.")


def http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    _use_buyer_locale(request)
    status = exc.status_code
    detail = str(exc.detail or "")
    message = _message(status, detail)
    if isinstance(exc, NotAuthorizedException | PermissionDeniedException) and status == 401:
        message = _("Please sign in first.")
    if not _wants_html(request):
        return Response(
            {"status_code": status, "detail": detail or HTTPStatus(status).phrase},
            status_code=status,
            media_type=MediaType.JSON,
            headers=exc.headers,
        )
    template = {404: "errors/404.html", 403: "errors/403.html"}.get(status, "errors/error.html")
    return Template(
        template_name=template,
        context={"status": status, "message": message},
        status_code=status,
        headers=exc.headers,
    )


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("request.failed", path=request.url.path, error=type(exc).__name__)
    _use_buyer_locale(request)
    if not _wants_html(request):
        return Response(
            {"status_code": 500, "detail": "Internal Server Error"},
            status_code=HTTP_500_INTERNAL_SERVER_ERROR,
            media_type=MediaType.JSON,
        )
    return Template(
        template_name="errors/500.html",
        context={"status": 500, "message": _message(500, "")},
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
    )


@route(
    "/{path:path}",
    http_method=[HttpMethod.GET, HttpMethod.HEAD],
    name="not_found",
    include_in_schema=False,
    opt={READ_ONLY_OPT: True},
)
async def not_found(path: str) -> None:
    """Any page no other route matches, answered *inside* the middleware stack.

    Litestar answers an unmatched path before any middleware runs, so its 404 page had no
    session (the header showed a signed-in buyer as signed out) and no CSRF token (the
    header's sign-out form could not work). Routed here, the page gets both.
    """
    raise NotFoundException()


ROUTES: list[object] = [not_found]
