"""Attempt limits that hold under concurrency, across workers and replicas, behind proxies.

Litestar's ``RateLimitConfig`` reads the counter from its store, decides in Python and writes
it back: 60 concurrent sign-ins from one address passed 15-20 times against a limit of 10.
Here each hit is one atomic step that returns the new count — an
``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` on ``rate_limit_counter``, or Redis
``SET NX EX`` + ``INCR`` in one ``MULTI`` — so exactly ``limit`` hits in a window see a count
within the limit, whichever process made them.

Counters run in their own short transaction, not the request's: a refused or failed attempt is
answered 4xx, which rolls the request's transaction back, and the hit must stay counted.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final, Protocol, cast

from litestar import Litestar, Request
from litestar.connection import ASGIConnection
from litestar.exceptions import TooManyRequestsException
from litestar.handlers.base import BaseRouteHandler
from redis.asyncio import Redis
from sqlalchemy import Connection, Table, case, delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.accounts.models import RateLimitCounter
from app.db.writer import Writer, background_writer, write_transaction

STATE_KEY: Final = "limiter"
ADDRESS_LIMIT: Final = 10
ADDRESS_WINDOW: Final = 60
"""Ten sign-in or sign-up attempts a minute per client address, counted together."""
ACCOUNT_LIMIT: Final = 10
ACCOUNT_WINDOW: Final = 15 * 60
"""Ten sign-in attempts per email in 15 minutes, from any address; a successful sign-in clears it."""

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_TABLE = cast("Table", RateLimitCounter.__table__)


class Counter(Protocol):
    """Adds one hit to ``key``'s current window and returns the window's count, atomically."""

    async def hit(self, key: str, window: int, count: int = 1) -> int:
        """``count`` hits at once (the host API's batches: app/api/auth.py)."""
        ...

    async def clear(self, key: str, db_session: AsyncSession) -> None:
        """Forget ``key``; on the database inside the request's transaction (SQLite has one writer)."""

    async def close(self) -> None: ...


def _hit(conn: Connection, *, key: str, window: int, count: int, now: int) -> int:
    """One counter step (the statement is built per call: SQLAlchemy's ``Connection`` runs it)."""
    table = _TABLE
    insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    ins = insert(table).values(key=key, hits=count, expires_at=now + window)
    over = table.c.expires_at <= now
    upsert = ins.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "hits": case((over, count), else_=table.c.hits + count),
            "expires_at": case((over, ins.excluded.expires_at), else_=table.c.expires_at),
        },
    ).returning(table.c.hits)
    hits = int(conn.execute(upsert).scalar_one())
    if hits == count:
        # A window starts: purge the windows that ended, so the table holds live keys only.
        conn.execute(delete(table).where(table.c.expires_at <= now))
    return hits


class SQLCounter:
    """Counters in ``rate_limit_counter`` (SQLite or PostgreSQL): one statement per hit.

    On SQLite each hit is an operation of the money writer once the app runs (``writer``, set
    by :meth:`Limiter.lifespan`): the host API's batched counts and every sign-in would
    otherwise take SQLite's one write lock from under the writer's batches.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.writer: Writer | None = None

    async def hit(self, key: str, window: int, count: int = 1) -> int:
        return await write_transaction(
            self.writer, self._engine, _hit, key=key, window=window, count=count, now=int(time.time())
        )

    async def clear(self, key: str, db_session: AsyncSession) -> None:
        await db_session.execute(delete(_TABLE).where(_TABLE.c.key == key))

    async def close(self) -> None:
        """The engine belongs to the app's SQLAlchemy config, which disposes of it."""


class RedisCounter:
    """Counters in Redis: ``SET key 0 EX window NX`` then ``INCR`` in one ``MULTI``; Redis expires them."""

    def __init__(self, client: Redis[Any], prefix: str = "storefront:limit:") -> None:
        self._client = client
        self._prefix = prefix

    async def hit(self, key: str, window: int, count: int = 1) -> int:
        name = self._prefix + key
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.set(name, 0, ex=window, nx=True)
            pipe.incrby(name, count)
            _, hits = await pipe.execute()
        return int(hits)

    async def clear(self, key: str, db_session: AsyncSession) -> None:
        await self._client.delete(self._prefix + key)

    async def close(self) -> None:
        await self._client.aclose()  # type: ignore[attr-defined]  # redis>=5; stubs lag


def parse_networks(items: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address as a proxy may write it (``1.2.3.4:80``, ``[::1]:443``), IPv4-mapped ones as IPv4."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _key(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """One counter per IPv4 address, one per IPv6 /64 (a host there can take any of 2**64)."""
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    ip = _ip(address)
    return ip is not None and any(ip in network for network in trusted)


def client_address(scope: Any, trusted: tuple[Network, ...]) -> str:
    """The client's address: the direct peer, unless the peer is a trusted proxy.

    Then it is the right-most ``X-Forwarded-For`` hop that is not trusted (hops left of it were
    written by the client and prove nothing); when every hop is trusted, the left-most one.
    The server's own proxy-header handling must be off, so ``scope["client"]`` is the real peer.
    """
    client = scope.get("client")
    peer_text = str(client[0]) if client else ""
    peer_ip = _ip(peer_text)
    peer = _key(peer_ip) if peer_ip is not None else peer_text[:64]
    if not _trusted(peer_text, trusted):
        return peer
    forwarded = [
        hop.strip()
        for name, value in scope.get("headers", [])
        if name == b"x-forwarded-for"
        for hop in bytes(value).decode("latin-1").split(",")
        if hop.strip()
    ]
    for hop in reversed(forwarded):
        if not _trusted(hop, trusted):
            ip = _ip(hop)
            return _key(ip) if ip is not None else peer  # a hop we cannot read proves nothing
    first = _ip(forwarded[0]) if forwarded else None
    return _key(first) if first is not None else peer


@dataclass(frozen=True, slots=True)
class Limiter:
    """The app's counters and trusted proxies, kept in ``app.state`` under ``STATE_KEY``."""

    counter: Counter
    trusted: tuple[Network, ...] = ()

    async def hit(self, key: str, limit: int, window: int) -> None:
        """Count one attempt; ``429`` when it is beyond ``limit`` in this window."""
        if await self.counter.hit(key, window) > limit:
            raise TooManyRequestsException(headers={"Retry-After": str(window)})

    def address(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str:
        return client_address(connection.scope, self.trusted)

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        if isinstance(self.counter, SQLCounter):
            self.counter.writer = background_writer(app)
        try:
            yield
        finally:
            await self.counter.close()


def make_limiter(redis_url: str, engine: AsyncEngine, trusted_proxies: Iterable[str]) -> Limiter:
    """Redis when configured (shared by replicas, expiring by itself), else the database."""
    counter: Counter = RedisCounter(Redis.from_url(redis_url)) if redis_url else SQLCounter(engine)
    return Limiter(counter=counter, trusted=parse_networks(trusted_proxies))


def limiter_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Limiter:
    limiter: Limiter = connection.app.state[STATE_KEY]
    return limiter


async def limit_by_address(
    connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler
) -> None:
    """Guard for the sign-in and sign-up posts: ten a minute per client address, counted together."""
    limiter = limiter_of(connection)
    await limiter.hit("auth:" + limiter.address(connection), ADDRESS_LIMIT, ADDRESS_WINDOW)


def scoped_account_key(scope: str, email: str) -> str:
    """A fixed-length key per (scope, email) that does not store the email itself."""
    return f"{scope}:" + hashlib.sha256(email.encode()).hexdigest()


def _account_key(email: str) -> str:
    return scoped_account_key("account", email)


async def limit_by_account(request: Request[Any, Any, Any], email: str) -> None:
    """Count a sign-in attempt on ``email`` before its password is checked (429 beyond the limit)."""
    await limiter_of(request).hit(_account_key(email), ACCOUNT_LIMIT, ACCOUNT_WINDOW)


async def clear_account(request: Request[Any, Any, Any], db_session: AsyncSession, email: str) -> None:
    """A successful sign-in: the account's failed attempts are forgotten (with the request's commit)."""
    await limiter_of(request).counter.clear(_account_key(email), db_session)
