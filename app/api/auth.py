"""Who is calling the host API: ``Authorization: Bearer <server key>``, its scopes and its rate.

:func:`server_key_guard` guards every ``/api/v1`` route (set on the API router). A route names
the scope it needs in its ``opt``::

    @post("/customers/{external_id:str}/debits", opt={"scope": "spend"})
    @put("/customers/{external_id:str}", opt={"scope": ("spend", "grant")})   # any of these

and takes the caller's key as the dependency ``server_key: KeyRow`` when it needs it (the
idempotency helper does). A route without ``scope`` is refused at start-up by the router.

The key is looked up on a connection of its own, in a read-only (on SQLite: deferred)
transaction, before the request's transaction begins; ``last_used_at`` is written in its own
short transaction only when the row read says it is more than a minute old, so reads mostly
write nothing. Each call also counts against the key's limit per minute in the shared
counters of app/accounts/limits.py (Redis when configured, else the database), so every replica
enforces one budget per key.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import structlog
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import ImproperlyConfiguredException
from litestar.handlers.base import BaseRouteHandler
from sqlalchemy.ext.asyncio import AsyncEngine

from app.accounts.limits import Counter, Limiter
from app.api.keys import KeyRow, find_key, hash_key, needs_touch, touch_key
from app.api.problems import Problem
from app.db.config import READ_ONLY
from app.db.reader import get_reader
from app.db.sql import SqlConnection
from app.settings import Settings

log = structlog.get_logger()

__all__ = (
    "STATE_KEY",
    "ApiContext",
    "KeyCache",
    "admit",
    "api_read",
    "bearer_token",
    "is_json_media",
    "provide_server_key",
    "required_scopes",
    "server_key_guard",
)

STATE_KEY: Final = "api"
_KEY_STATE: Final = "server_key"
T = TypeVar("T")
RATE_WINDOW: Final = 60
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})
_CHALLENGE: Final = {"WWW-Authenticate": 'Bearer realm="storefront"'}


class KeyCache:
    """Server keys this process looked up, trusted for ``seconds`` (0: every call looks up).

    Measured reason: the look-up on its own connection took most of a debit's time on SQLite
    (``bench/credits_bench.py --mode debits``: 208 debits/s with it on every call, the
    connection pool creating aiosqlite threads under 32 concurrent calls). A revoked key stops
    working within ``seconds`` (5 by default, ``STOREFRONT_API_KEY_CACHE_SECONDS``), as hosted
    key services do. Unknown keys are never cached; the cache is bounded.
    """

    LIMIT: Final = 10_000

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._rows: dict[str, tuple[float, KeyRow]] = {}

    def get(self, digest: str) -> KeyRow | None:
        hit = self._rows.get(digest)
        if hit is None:
            return None
        if hit[0] <= time.monotonic():
            del self._rows[digest]
            return None
        return hit[1]

    def put(self, digest: str, row: KeyRow) -> None:
        if self.seconds <= 0:
            return
        if len(self._rows) >= self.LIMIT:
            self._rows.clear()
        self._rows[digest] = (time.monotonic() + self.seconds, row)


class CallCounts:
    """Each server key's calls a minute, added to the shared counter in batches.

    Measured reason: one Redis ``MULTI`` per call was a third of a hot balance read's time on
    the event loop (py-spy, ``bench/credits_bench.py --mode balance``). Calls are counted here
    and added every :data:`FLUSH_SECONDS`; each flush reads back the total of every replica.
    Exact where it matters: a limit under :data:`EXACT_BELOW` a minute, and any key past 90%
    of its limit, is counted call by call in the shared counter, as before. Far from the limit a
    replica may see the others' last :data:`FLUSH_SECONDS` of calls late, which cannot let a key
    through past its limit (counting turns exact before it).
    """

    FLUSH_SECONDS: Final = 0.05
    EXACT_BELOW: Final = 1000
    KEYS: Final = 10_000

    def __init__(self, counter: Counter) -> None:
        self._counter = counter
        self._known: dict[str, int] = {}
        """Each key's shared count, as the last addition returned it."""
        self._pending: dict[str, int] = {}
        """Calls counted here and not yet added."""
        self._flusher: asyncio.Task[None] | None = None

    async def hit(self, key: str, limit: int) -> int:
        """This call's number in the key's window (all replicas' calls), to compare with ``limit``."""
        estimate = self._known.get(key, 0) + self._pending.get(key, 0) + 1
        if limit < self.EXACT_BELOW or estimate * 10 >= limit * 9:
            total = await self._counter.hit(key, RATE_WINDOW, self._pending.pop(key, 0) + 1)
            self._known[key] = total
            return total
        self._pending[key] = self._pending.get(key, 0) + 1
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), context=contextvars.Context())
        return estimate

    async def _flush(self) -> None:
        await asyncio.sleep(self.FLUSH_SECONDS)
        pending, self._pending = self._pending, {}
        if len(self._known) > self.KEYS:
            self._known.clear()
        for key, count in pending.items():
            try:
                self._known[key] = await self._counter.hit(key, RATE_WINDOW, count)
            except Exception:  # the counter is unreachable: keep the calls for the next flush
                log.warning("api.rate_count_failed", exc_info=True)
                self._pending[key] = self._pending.get(key, 0) + count


@dataclass(frozen=True, slots=True)
class ApiContext:
    """What the guard needs, kept in ``app.state[STATE_KEY]`` by ``create_app``."""

    engine: AsyncEngine
    limiter: Limiter
    rate_per_minute: int
    keys: KeyCache = field(default_factory=lambda: KeyCache(0))
    query_names: dict[int, tuple[Any, frozenset[str]]] = field(default_factory=dict)
    """Each route's query parameters (see :func:`_query_names`)."""
    calls: CallCounts = field(init=False)
    """Each key's calls, batched onto ``limiter.counter``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "calls", CallCounts(self.limiter.counter))


def required_scopes(handler: BaseRouteHandler) -> tuple[str, ...]:
    """The scopes a route accepts (any one suffices), from ``opt["scope"]``."""
    scope = handler.opt.get("scope")
    if isinstance(scope, str):
        return (scope,)
    if isinstance(scope, Iterable) and scope and all(isinstance(s, str) for s in scope):
        return tuple(scope)
    raise ImproperlyConfiguredException(f"API route {handler.handler_name} names no opt['scope']")


def bearer_token(header: str | None) -> str:
    """The key of ``Authorization: Bearer <key>``; 401 problems for a missing or odd header."""
    if not header:
        raise Problem(
            401,
            "missing_api_key",
            "Send your server key as 'Authorization: Bearer <key>'.",
            headers=_CHALLENGE,
        )
    scheme, _sep, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Problem(
            401, "malformed_authorization", "Use 'Authorization: Bearer <key>'.", headers=_CHALLENGE
        )
    return token


async def _look_up(engine: AsyncEngine, token: str) -> KeyRow | None:
    marker = READ_ONLY.set(True)  # a deferred BEGIN on SQLite: the look-up never takes the write lock
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(find_key, token)
    finally:
        READ_ONLY.reset(marker)


async def _touch(engine: AsyncEngine, key_id: int) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(touch_key, key_id)


def _query_names(connection: ASGIConnection[Any, Any, Any, Any], context: ApiContext) -> frozenset[str]:
    """The query parameters a route reads (its own and its dependencies'), worked out once per app.

    Keyed by the app's own handler (guards are given a copy of it on each request).
    """
    handler: BaseRouteHandler = connection.scope["route_handler"]
    known = context.query_names.get(id(handler))
    if known is not None and known[0] is handler:
        return known[1]
    path = dict.fromkeys(connection.scope.get("path_params", {}))
    model = handler.create_kwargs_model(path_parameters=path)  # type: ignore[arg-type]
    names = frozenset(param.field_alias for param in model.expected_query_params)
    context.query_names[id(handler)] = (handler, names)
    return names


def _has_body(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """A POST without a body (``release``) needs no content type."""
    length = connection.headers.get("content-length")
    return "transfer-encoding" in connection.headers or (length is not None and length.strip() != "0")


def is_json_media(content_type: str | None) -> bool:
    """``application/json`` or ``application/<x>+json``, parameters and case aside."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


async def admit(context: ApiContext, token: str, scopes: tuple[str, ...]) -> KeyRow:
    """The caller's live key, counted against its rate: 401 unknown, 429 beyond it, 403 no scope.

    The guard and the hot paths (app/api/hot.py) both let a call in through here.
    """
    digest = hash_key(token)
    row = context.keys.get(digest)
    if row is None:
        row = await _look_up(context.engine, token)
        if row is not None:
            if needs_touch(row):  # only on a fresh look-up: a cached row's time is not news
                await _touch(context.engine, row.id)
            context.keys.put(digest, row)
    if row is None:
        raise Problem(401, "invalid_api_key", "This key is unknown or revoked.", headers=_CHALLENGE)
    # Named by the key's hash, not its id: ids repeat across databases sharing one Redis.
    hits = await context.calls.hit("api:" + digest[:32], context.rate_per_minute)
    if hits > context.rate_per_minute:
        # The window began at its first hit, which the counter does not tell: a whole window is safe.
        raise Problem(
            429,
            "rate_limited",
            f"More than {context.rate_per_minute} calls a minute with this key.",
            headers={"Retry-After": str(RATE_WINDOW)},
        )
    if not set(scopes) & set(row.scopes):
        raise Problem(403, "insufficient_scope", f"This key needs the scope {' or '.join(scopes)}.")
    return row


async def server_key_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """401 without a live key, 429 beyond its rate, 403 without the route's scope, 422 for an unknown
    query parameter (a typo would otherwise pass unnoticed), 415 for non-JSON bodies."""
    if connection.scope.get("method") == "OPTIONS":
        return  # Litestar's own answer listing the methods (its handler inherits the router's guards)
    context: ApiContext = connection.app.state[STATE_KEY]
    token = bearer_token(connection.headers.get("authorization"))
    row = await admit(context, token, required_scopes(handler))
    unknown = sorted(set(connection.query_params) - _query_names(connection, context))
    if unknown:
        raise Problem(422, "unknown_parameter", f"Unknown query parameter {unknown[0]!r}.", param=unknown[0])
    if (
        connection.scope.get("method") in _BODY_METHODS
        and _has_body(connection)
        and not is_json_media(connection.headers.get("content-type"))
    ):
        raise Problem(415, "unsupported_media_type", "Send the body as application/json.")
    connection.state[_KEY_STATE] = row


async def api_read(request: Request[Any, Any, Any], operation: Callable[[SqlConnection], T]) -> T:
    """Run a read operation of an API route through the process's reader (``app.db.reader``)."""
    context: ApiContext = request.app.state[STATE_KEY]
    settings: Settings = request.app.state["settings"]
    return await get_reader(request.app, settings.database_url, context.engine).call(operation)


def provide_server_key(request: Request[Any, Any, Any]) -> KeyRow:
    """Dependency ``server_key``: the caller's key, as the guard found it."""
    row: KeyRow = request.state[_KEY_STATE]
    return row
