"""Strict JSON bodies: ``"units": "5"`` or ``5.0`` is refused, not read as 5.

Litestar converts a ``data`` parameter leniently (msgspec's ``strict=False``), which would let a
string or a float stand for an integer of money. Money routes still declare ``data`` (so the
OpenAPI schema shows the body and malformed ones are refused early) and then read the body
again with :func:`strict_body`, msgspec's default strict mode: a few microseconds.
"""

from __future__ import annotations

import re
from typing import Any, Final, TypeVar

import msgspec
from litestar import Request

from app.api.problems import Problem

__all__ = ("decode_strict", "strict_body")

T = TypeVar("T")
_AT_FIELD: Final = re.compile(r"at `\$\.([A-Za-z_][A-Za-z0-9_]*)`|unknown field `([^`]+)`")


async def strict_body(request: Request[Any, Any, Any], of: type[T]) -> T:
    """The body decoded strictly as ``of``; 400 ``malformed_json`` or 422 ``invalid_request``."""
    return decode_strict(await request.body(), of)


def decode_strict(raw: bytes, of: type[T]) -> T:
    """``strict_body`` on bytes already read (the hot paths read them from ASGI themselves)."""
    try:
        return msgspec.json.decode(raw, type=of)
    except msgspec.ValidationError as error:
        named = _AT_FIELD.search(str(error))
        param = (named.group(1) or named.group(2)) if named else None
        raise Problem(422, "invalid_request", str(error), param=param) from error
    except msgspec.DecodeError as error:
        raise Problem(400, "malformed_json", f"The body is not valid JSON: {error}") from error
