"""Errors of the host API as RFC 9457 problem details (``application/problem+json``).

Every error under ``/api`` is one shape, whoever raised it: our handlers raise :class:`Problem`
with a stable ``code`` (what a host program branches on; the ``detail`` is for people), and
Litestar's own exceptions (routing 404/405, body too large, validation, guards' 401/403,
rate limits' 429) and unexpected exceptions (500, without internals) are translated by
:func:`api_aware`, which wraps the app's exception handlers so pages elsewhere stay HTML.

Usage in a handler::

    raise Problem(404, "customer_not_found", "No customer has this external id.")
    raise Problem(422, "invalid_units", "units must be positive.", param="units")

and ``responses=problem_responses(404, 409)`` on the route documents them in the OpenAPI.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any, Final

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec

__all__ = (
    "API_PREFIX",
    "PROBLEM_MEDIA_TYPE",
    "Problem",
    "ProblemDetails",
    "api_aware",
    "is_api_path",
    "problem_details",
    "problem_response",
    "problem_responses",
)

log = structlog.get_logger()

API_PREFIX: Final = "/api"
PROBLEM_MEDIA_TYPE: Final = "application/problem+json"
TYPE_BASE: Final = "https://storefront.invalid/problems/"
"""``type`` is a stable URI per ``code``; it need not resolve (RFC 9457 §3.1.1)."""

_CODES: Final = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal_error",
}
"""The ``code`` of an error nobody named more precisely."""


class ProblemDetails(msgspec.Struct, omit_defaults=True):
    """RFC 9457 problem details, plus ``code`` (stable, for programs) and ``param`` (the field at fault)."""

    type: str
    title: str
    status: int
    code: str
    detail: str = ""
    param: str | None = None


class Problem(HTTPException):
    """An API error with its stable ``code``; answered as problem details by :func:`api_aware`."""

    def __init__(
        self,
        status_code: int,
        code: str,
        detail: str,
        *,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail=detail, status_code=status_code, headers=dict(headers or {}))
        self.code = code
        self.param = param


def is_api_path(path: str) -> bool:
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def problem_details(status: int, code: str, detail: str = "", *, param: str | None = None) -> ProblemDetails:
    """The body of a problem (for answers returned rather than raised, e.g. by a writer operation)."""
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    return ProblemDetails(
        type=TYPE_BASE + code, title=title, status=status, code=code, detail=detail, param=param
    )


def problem_response(
    status: int,
    code: str,
    detail: str = "",
    *,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response[ProblemDetails]:
    """A problem-details response (also for code that answers without raising)."""
    body = problem_details(status, code, detail, param=param)
    return Response(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=dict(headers or {}))


ALWAYS: Final = (400, 401, 403, 413, 415, 422, 429)
"""Errors any API route may answer: bad JSON, key, scope, size, content type, validation, rate."""


def problem_responses(*statuses: int, **success: ResponseSpec) -> dict[int, ResponseSpec]:
    """OpenAPI ``responses=`` for a route: its own error statuses besides :data:`ALWAYS`.

    ``problem_responses(404, 409)``; another success status too: ``problem_responses(409,
    created=ResponseSpec(CustomerOut, description="Created"))`` documents it as 201.
    """
    every: dict[int, ResponseSpec] = {
        status: ResponseSpec(
            data_container=ProblemDetails,
            description=HTTPStatus(status).phrase,
            media_type=PROBLEM_MEDIA_TYPE,
        )
        for status in sorted({*ALWAYS, *statuses})
    }
    if "created" in success:
        every[201] = success["created"]
    return every


_UNKNOWN_FIELD: Final = re.compile(r"unknown field `([^`]+)`")
_PARAM_NAMES: Final = {"idempotency_key": "Idempotency-Key"}
"""Litestar names a header by its Python parameter; hosts know it by the header's name."""


def _validation_param(exc: ValidationException) -> tuple[str, str | None]:
    """(detail, param) of Litestar's validation error: its first message and the field it names.

    Litestar names the body ``data`` when msgspec faults it whole (an unknown field, a list for
    an object): then the unknown field's name, or no ``param``.
    """
    extra = exc.extra
    first: Any = extra[0] if isinstance(extra, list) and extra else extra
    if not isinstance(first, dict):
        return str(exc.detail or "Invalid request"), None
    message = str(first.get("message") or exc.detail)
    key = str(first.get("key") or "") or None
    if key == "data":
        unknown = _UNKNOWN_FIELD.search(message)
        key = unknown.group(1) if unknown else None
    return message, _PARAM_NAMES.get(key, key) if key else None


def _from_http_exception(exc: HTTPException, *, has_body: bool) -> Response[ProblemDetails]:
    headers = dict(exc.headers or {})
    if isinstance(exc, Problem):
        return problem_response(exc.status_code, exc.code, str(exc.detail), param=exc.param, headers=headers)
    if isinstance(exc, ValidationException):
        detail, param = _validation_param(exc)
        if detail == "'data'":  # no body at all: Litestar misses its ``data``
            return problem_response(400, "malformed_json", "A JSON body is required.", headers=headers)
        return problem_response(422, "invalid_request", detail, param=param, headers=headers)
    status = exc.status_code
    detail = str(exc.detail or "")
    if status == 400 and has_body:
        # Litestar's 400 for a body msgspec could not decode (malformed, truncated, out of range).
        return problem_response(
            400, "malformed_json", f"The body is not valid JSON: {detail}", headers=headers
        )
    if status >= 500:
        # Our fault: say so without internals (the exception was logged by the caller).
        return problem_response(500, _CODES[500], "Something went wrong on our side.", headers=headers)
    if status == 405:
        detail = "This method is not allowed here."
    elif status == 404:
        detail = "No such endpoint."
    elif status == 413:
        detail = "The request body is too large."
    elif status == 429:
        detail = "Too many requests; retry after the number of seconds in Retry-After."
    code = _CODES.get(status, _CODES[400] if status < 500 else _CODES[500])
    return problem_response(status, code, detail, headers=headers)


ExceptionHandler = Callable[[Request[Any, Any, Any], Any], Response[Any]]


def api_aware(handler: ExceptionHandler) -> ExceptionHandler:
    """Wrap one of the app's exception handlers: under ``/api`` answer problem details instead.

    Registered app-wide (routing errors never reach a router's handlers); pages keep theirs.
    """

    def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        if not is_api_path(request.url.path):
            return handler(request, exc)
        if isinstance(exc, HTTPException) and exc.status_code < 500:
            return _from_http_exception(exc, has_body=request.method in ("POST", "PUT", "PATCH"))
        log.exception("api.failed", path=request.url.path, error=type(exc).__name__)
        return problem_response(500, _CODES[500], "Something went wrong on our side.")

    return handle
