"""`create_sandbox_app`: the Litestar application serving the API, hosted pages and controls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Litestar, Request, Response, get
from litestar.exceptions import HTTPException, MethodNotAllowedException, NotFoundException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template.config import TemplateConfig

from .api import api_routes, stripe_error_response
from .config import SandboxConfig
from .control import control_routes
from .errors import StripeError, unrecognized_url
from .hosted import hosted_routes
from .resources import resource_routes
from .runtime import SandboxRuntime
from .styles import STYLESHEET

TEMPLATES = Path(__file__).parent / "templates"


def _relative_path(request: Request[Any, Any, Any]) -> str:
    return str(request.scope.get("path", "/"))


def _is_api(request: Request[Any, Any, Any]) -> bool:
    path = _relative_path(request)
    return "/v1/" in path or path.endswith("/v1") or "/_sandbox/" in path


def _not_found(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    path = request.url.path
    if _is_api(request):
        return stripe_error_response(unrecognized_url(request.method, path[path.find("/v1") :] or path))
    return Template(template_name="status.html", context={"session": None}, status_code=404)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if _is_api(request):
        return stripe_error_response(StripeError(str(exc.detail), status=exc.status_code))
    return Response(str(exc.detail), status_code=exc.status_code, media_type="text/plain")


def _server_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return stripe_error_response(
        StripeError("An unknown error occurred in the Stripe sandbox.", status=500, type="api_error")
    )


def _add_globals(engine: JinjaTemplateEngine) -> None:
    engine.engine.globals["sandbox_css"] = STYLESHEET


def create_sandbox_app(config: SandboxConfig | None = None) -> Litestar:
    """Build the sandbox; `app.state.sandbox` is its SandboxRuntime (state, delivery, flush)."""
    runtime = SandboxRuntime(config or SandboxConfig())

    @get("/", include_in_schema=False)
    async def index() -> Template:
        return Template(template_name="status.html", context={"session": None, "index": True})

    app = Litestar(
        route_handlers=[
            index,
            *api_routes(runtime),
            *resource_routes(runtime),
            *control_routes(runtime),
            *hosted_routes(runtime),
        ],
        lifespan=[runtime.lifespan],
        template_config=TemplateConfig(
            directory=TEMPLATES, engine=JinjaTemplateEngine, engine_callback=_add_globals
        ),
        exception_handlers={
            NotFoundException: _not_found,
            MethodNotAllowedException: _not_found,
            HTTPException: _http_error,
            Exception: _server_error,
        },
        openapi_config=None,
        logging_config=None,
    )
    app.state.sandbox = runtime
    return app


def get_runtime(app: Litestar) -> SandboxRuntime:
    runtime: SandboxRuntime = app.state.sandbox
    return runtime
