"""The host API's router (``/api/v1``), its OpenAPI schema and its docs page.

Every route under ``/api/v1`` is guarded by :func:`app.api.auth.server_key_guard` (each names
its scope in ``opt``), takes JSON bodies of at most :data:`API_BODY_LIMIT` bytes, and has the
dependencies ``server_key``, ``idempotency`` and ``page``. A new endpoint is one handler added to
:data:`V1_HANDLERS`.

``/api/openapi.json`` is Litestar's schema of these routes only (the shop's pages are left out
of it at the app level); ``/api/docs`` is Swagger UI served from ``/static/api-docs`` (vendored,
no CDN), started by a script file so that the shop's CSP (scripts from this origin only) holds.
"""

from __future__ import annotations

from html import escape
from typing import Any, Final

from litestar import Request, Response, Router
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from app.api.auth import provide_server_key, server_key_guard
from app.api.customers import ROUTES as CUSTOMER_ROUTES
from app.api.idempotency import provide_idempotency
from app.api.pagination import provide_page
from app.api.problems import problem_response
from app.api.spending import ROUTES as SPENDING_ROUTES
from app.buyer_keys.api import ROUTES as BUYER_KEY_ROUTES

__all__ = ("API_BODY_LIMIT", "ROUTES", "V1_HANDLERS", "openapi_config")

API_BODY_LIMIT: Final = 64 * 1024
"""Largest JSON body the API accepts; larger ones are 413 before any of it is parsed."""
SWAGGER: Final = "/static/api-docs/swagger-ui-5.35.0"
V1_HANDLERS: list[Any] = [*CUSTOMER_ROUTES, *SPENDING_ROUTES, *BUYER_KEY_ROUTES]

api_v1 = Router(
    path="/api/v1",
    route_handlers=V1_HANDLERS,
    guards=[server_key_guard],
    dependencies={
        "server_key": Provide(provide_server_key, sync_to_thread=False),
        "idempotency": Provide(provide_idempotency, sync_to_thread=False),
        "page": Provide(provide_page, sync_to_thread=False),
    },
    request_max_body_size=API_BODY_LIMIT,
    include_in_schema=True,
    security=[{"ServerKey": []}],
    tags=["v1"],
)


class SwaggerLocal(OpenAPIRenderPlugin):
    """Swagger UI from our own ``/static``: no CDN, no inline script or style."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        spec = escape(self.get_openapi_json_route(request))
        return (
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            "<title>Storefront host API</title>"
            f'<link rel="stylesheet" href="{SWAGGER}/swagger-ui.css">'
            f'<script src="{SWAGGER}/swagger-ui-bundle.js" defer></script>'
            '<script src="/static/api-docs/init.js" defer></script>'
            f'</head><body><div id="swagger-ui" data-spec-url="{spec}"></div></body></html>'
        ).encode()


def _not_found_as_problem(response: Response[Any]) -> Response[Any]:
    """The docs router answers unknown ``/api/<x>`` with an HTML page of its own: make it a problem."""
    if response.status_code == 404:
        return problem_response(404, "not_found", "No such endpoint.")
    return response


def openapi_config() -> OpenAPIConfig:
    """``/api/openapi.json`` and ``/api/docs``."""
    return OpenAPIConfig(
        title="Storefront host API",
        version="1",
        description=(
            "JSON API for the host applications that own the coins or the API quota. "
            "Authenticate with `Authorization: Bearer <server key>` (see `storefront api-keys`). "
            "Errors are RFC 9457 problem details with a stable `code`."
        ),
        openapi_router=Router(
            path="/api", route_handlers=[], include_in_schema=False, after_request=_not_found_as_problem
        ),
        render_plugins=[JsonRenderPlugin(path="/openapi.json"), SwaggerLocal(path="/docs")],
        components=Components(
            security_schemes={
                "ServerKey": SecurityScheme(type="http", scheme="bearer", description="sf_live_… / sf_test_…")
            }
        ),
        use_handler_docstrings=True,
    )


ROUTES: list[Any] = [api_v1]
