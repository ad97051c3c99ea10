"""The app's routes as the tests walk them, so that a new route is covered without editing a test."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from litestar import Litestar
from litestar.routes import HTTPRoute

_PATH_PARAM = re.compile(r"\{(\w+):(\w+)\}")
RESERVED = {"request", "scope", "state", "headers", "cookies", "query", "data", "socket", "body"}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    """The template, e.g. ``/checkout/status/{order_id:int}``."""
    path_params: dict[str, str]
    """Name → Litestar type name (``int``, ``str``)."""
    query_params: dict[str, bool]
    """Query name → whether it is an integer."""

    def fill(self, **values: str) -> str:
        """The path with each parameter replaced by ``values[name]`` (else a plain sample)."""
        samples = {"int": "1", "str": "en"}
        return _PATH_PARAM.sub(lambda m: values.get(m[1], samples.get(m[2], "x")), self.path)


def _is_int(field: Any) -> bool:
    if field.is_subclass_of(bool):
        return False
    if field.is_subclass_of(int):
        return True
    return bool(
        field.is_optional and any(_is_int(inner) for inner in field.inner_types if not inner.is_none_type)
    )


def endpoints(app: Litestar) -> list[Endpoint]:
    """Every (method, path) of the app's HTTP handlers, with their path and query parameters."""
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        path_params = dict(_PATH_PARAM.findall(route.path))
        for handler in route.route_handlers:
            dependencies = set(handler.resolve_dependencies())
            query: dict[str, bool] = {}
            for name, field in handler.parsed_fn_signature.parameters.items():
                if name in dependencies or name in RESERVED or name in path_params:
                    continue
                alias = getattr(field.kwarg_definition, "query", None) or getattr(
                    field.kwarg_definition, "name", None
                )
                query[alias or name] = _is_int(field)
            for method in handler.http_methods:
                found.append(Endpoint(method, route.path, path_params, query))
    return found


def asgi_mounts(app: Litestar) -> list[str]:
    """Paths answered by raw ASGI handlers (static files, webhooks, the sandbox)."""
    return [route.path for route in app.routes if not isinstance(route, HTTPRoute)]
