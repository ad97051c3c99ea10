"""The host API's three hottest calls, answered ahead of the middleware stack (app/web/hot_paths.py).

``GET /api/v1/customers/{id}`` (balances), ``POST /api/v1/customers/{id}/debits`` and ``POST
/api/v1/keys/verify`` come by the thousand a second from a host. Measured reason
(``bench/credits_bench.py``, one worker): through Litestar's routing, guards, dependency
injection, validation and response machinery a balance read cost ~600 µs of the event loop
(1,612 reads/s) and a debit ~500 µs (1,991/s), several times the work they do.

Each hot handler runs the very functions the Litestar routes run: the key's admission
(:func:`app.api.auth.admit`: look-up, rate, scope), strict decoding, the same writer operations
(``spending_operation``, ``verify_and_charge``) and reads (``load_customer``), the same problem
bodies. It takes only the plain shape of a request — no query string, a declared JSON body
within the limit, a well-formed ``Idempotency-Key`` and a body that decodes — and hands anything
else to the Litestar route (``next_app``, the body replayed), so the error answers, validation
messages and OpenAPI stay those of the routes, which remain the documented API.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, TypeVar

import msgspec
import structlog
from litestar import Litestar
from litestar.types import ASGIApp, Receive, Scope, Send
from prometheus_client import Counter
from sqlalchemy import Connection

from app.api.auth import STATE_KEY, ApiContext, admit, bearer_token, is_json_media
from app.api.body import decode_strict
from app.api.customers import EXTERNAL_ID_PATTERN, load_customer
from app.api.idempotency import KEY_MAX, KEY_PATTERN, Answer, answer_headers
from app.api.keys import KeyRow
from app.api.problems import PROBLEM_MEDIA_TYPE, Problem, problem_details
from app.api.routes import API_BODY_LIMIT
from app.api.spending import DebitIn, assets_of, debit_change, spending_operation
from app.buyer_keys.api import VerifyRequest, verify_operation
from app.db.compiled import CompiledConnection
from app.db.reader import get_reader
from app.db.sql import SqlConnection
from app.db.writer import get_writer
from app.settings import Settings
from app.web.hot_paths import HotHandler, HotRoute
from app.web.raw import header_text, read_body, replaying, send_bytes

__all__ = ("HOT_ROUTES",)

log = structlog.get_logger()
T = TypeVar("T")

ANSWERED: Final = Counter(
    "storefront_api_hot_answered_total",
    "Host API calls answered by the hot paths (Litestar's request metrics do not see them)",
    ["route", "status"],
)

_EXTERNAL_ID: Final = re.compile(EXTERNAL_ID_PATTERN)
_IDEMPOTENCY_KEY: Final = re.compile(KEY_PATTERN)
_CUSTOMERS: Final = "/api/v1/customers/"
_JSON: Final = b"application/json"
_NO_STORE: Final = (b"cache-control", b"no-store")


class _Decline(Exception):
    """Not the plain shape this hot path takes: the Litestar route answers it."""


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    body: bytes
    media: bytes = _JSON
    headers: tuple[tuple[bytes, bytes], ...] = ()


Parser = Callable[[Scope, bytes], Any]
"""What a hot path takes from the request (its path and body, b"" without one), or ``_Decline``."""
Answerer = Callable[[Litestar, KeyRow, Any], Awaitable[_Reply]]
"""A hot path's own work, given the app, the admitted key and what its parser took."""


async def _send(send: Send, route: str, reply: _Reply) -> None:
    ANSWERED.labels(route=route, status=str(reply.status)).inc()
    await send_bytes(send, reply.status, [(b"content-type", reply.media), *reply.headers], reply.body)


def _problem(problem: Problem) -> _Reply:
    """The same problem details the routes answer (app/api/problems.py)."""
    body = problem_details(problem.status_code, problem.code, str(problem.detail), param=problem.param)
    return _Reply(
        problem.status_code, msgspec.json.encode(body), PROBLEM_MEDIA_TYPE.encode(), _raw(problem.headers)
    )


def _raw(headers: Mapping[str, str] | None) -> tuple[tuple[bytes, bytes], ...]:
    return tuple((name.lower().encode(), value.encode()) for name, value in (headers or {}).items())


def _plain(scope: Scope, *, body: bool) -> None:
    """Decline a query string (the routes refuse unknown ones) and, with a body, anything but a
    declared JSON body within the limit (the routes answer 413, 415 or read a chunked body)."""
    if scope.get("query_string"):
        raise _Decline
    if body:
        length = header_text(scope, b"content-length")
        if (
            length is None
            or not length.isdigit()
            or int(length) > API_BODY_LIMIT
            or header_text(scope, b"transfer-encoding") is not None
            or not is_json_media(header_text(scope, b"content-type"))
        ):
            raise _Decline


def _decoded(raw: bytes, of: type[T]) -> T:
    """The body strictly decoded; a body the route would refuse is declined (its messages stand)."""
    try:
        return decode_strict(raw, of)
    except Problem as refused:
        raise _Decline from refused


def _hot(route: str, scopes: tuple[str, ...], parse: Parser, answer: Answerer, *, body: bool) -> HotHandler:
    """A hot handler: the request's shape (declined before the key is counted, so the route's
    guard counts it once), the key, the answer, problems and 500s."""

    async def handler(scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        app: Litestar = scope["litestar_app"]
        raw: bytes | None = None  # the body, once read from ``receive``
        try:
            _plain(scope, body=body)
            if body:
                raw = await read_body(scope, receive, API_BODY_LIMIT)
                if raw is None:  # longer than it said
                    raise _Decline
            taken = parse(scope, raw or b"")
            context: ApiContext = app.state[STATE_KEY]
            key = await admit(context, bearer_token(header_text(scope, b"authorization")), scopes)
            reply = await answer(app, key, taken)
        except _Decline:
            await next_app(scope, receive if raw is None else replaying(raw, receive), send)
            return
        except Problem as problem:
            reply = _problem(problem)
        except ConnectionError:  # the client hung up before its body came: its doing, a quiet 4xx
            reply = _problem(
                Problem(400, "bad_request", "The client disconnected before sending the whole body.")
            )
        except Exception:
            log.exception("api.failed", path=scope["path"], route=route)
            reply = _problem(Problem(500, "internal_error", "Something went wrong on our side."))
        await _send(send, route, reply)

    return handler


def _external_id(scope: Scope, suffix: str = "") -> str:
    """The customer's id in ``/api/v1/customers/<id><suffix>``; one the route refuses is declined."""
    path: str = scope["path"]
    external_id = path[len(_CUSTOMERS) : len(path) - len(suffix)]
    if _EXTERNAL_ID.match(external_id) is None:
        raise _Decline
    return external_id


def _idempotency_key(scope: Scope) -> str | None:
    """The header as the routes' parameter takes it; one they would refuse is declined."""
    value = header_text(scope, b"idempotency-key")
    if value is not None and (len(value) > KEY_MAX or _IDEMPOTENCY_KEY.match(value) is None):
        raise _Decline
    return value


def _compiled(read: Callable[[SqlConnection], T], conn: Connection) -> T:
    """``read`` on the reader's connection through compile-once statements (app/db/compiled.py):
    its statements are all prebuilt, and SQLAlchemy's per-execution work was a quarter of a read."""
    return read(CompiledConnection(conn))


def _balances_of(scope: Scope, _body: bytes) -> str:
    return _external_id(scope)


async def _balances(app: Litestar, _key: KeyRow, external_id: str) -> _Reply:
    settings: Settings = app.state["settings"]
    context: ApiContext = app.state[STATE_KEY]
    read = partial(_compiled, partial(load_customer, external_id=external_id))
    reader = get_reader(app, settings.database_url, context.engine)
    out = reader.call_here(read) if settings.is_sqlite else await reader.call(read)
    return _Reply(200, msgspec.json.encode(out))


def _debit_of(scope: Scope, raw: bytes) -> tuple[str, DebitIn, str | None]:
    return _external_id(scope, "/debits"), _decoded(raw, DebitIn), _idempotency_key(scope)


async def _debit(app: Litestar, key: KeyRow, taken: tuple[str, DebitIn, str | None]) -> _Reply:
    external_id, body, idempotency_key = taken
    assets = assets_of(app.state["catalogue"])
    operation = spending_operation("debit", debit_change, external_id, body, assets, key.id, idempotency_key)
    answer: Answer = await get_writer(app).call(operation)
    media, headers = answer_headers(answer)
    return _Reply(answer.status_code, answer.body, media.encode(), _raw(headers))


def _verify_of(_scope: Scope, raw: bytes) -> VerifyRequest:
    return _decoded(raw, VerifyRequest)


async def _verify(app: Litestar, _key: KeyRow, body: VerifyRequest) -> _Reply:
    verdict = await get_writer(app).call(verify_operation(body, app.state["catalogue"]))
    return _Reply(200, msgspec.json.encode(verdict), headers=(_NO_STORE,))


HOT_ROUTES: Final = [
    HotRoute(
        "GET",
        _CUSTOMERS,
        _hot("balances", ("read",), _balances_of, _balances, body=False),
        suffix="",
    ),
    HotRoute(
        "POST",
        _CUSTOMERS,
        _hot("debits", ("spend",), _debit_of, _debit, body=True),
        suffix="/debits",
    ),
    HotRoute(
        "POST",
        "/api/v1/keys/verify",
        _hot("verify", ("spend",), _verify_of, _verify, body=True),
    ),
]
"""Put ahead of the middleware stack by ``create_app`` (app/web/hot_paths.py)."""
