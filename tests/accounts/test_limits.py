"""The limiter's parts: atomic counters on each store, and the client address behind proxies."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest
from litestar.exceptions import TooManyRequestsException
from redis.asyncio import Redis

from app.accounts import limits
from app.accounts.limits import Limiter, RedisCounter, SQLCounter, client_address, parse_networks
from app.db.config import make_engine
from app.db.writer import STATE_KEY as WRITER_KEY
from app.settings import Settings, SettingsError, trusted_proxies
from app.web.factory import create_app
from tests.accounts.test_limits_http import _redis_answers
from tests.conftest import missing
from tests.support.writers import recording_writer


async def _passed(limiter: Limiter, key: str, attempts: int = 60, limit: int = 10) -> int:
    async def one() -> bool:
        try:
            await limiter.hit(key, limit, 60)
        except TooManyRequestsException:
            return False
        return True

    return sum(await asyncio.gather(*(one() for _ in range(attempts))))


def test_sql_counter_lets_exactly_the_limit_through(settings: Settings) -> None:
    async def go() -> tuple[int, int]:
        engine = make_engine(settings)
        try:
            counter = SQLCounter(engine)
            passed = await _passed(Limiter(counter), "k")
            other = await counter.hit("other", 60)
            return passed, other
        finally:
            await engine.dispose()

    assert asyncio.run(go()) == (10, 1)


def test_sql_counter_starts_a_new_window_and_purges_ended_ones(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the counter's own clock (seconds), so a busy machine cannot split the first window."""
    clock = [1_800_000_000.5]
    monkeypatch.setattr(limits, "time", SimpleNamespace(time=lambda: clock[0]))

    async def go() -> list[int]:
        engine = make_engine(settings)
        try:
            counter = SQLCounter(engine)
            seen = [await counter.hit("a", 1), await counter.hit("a", 1), await counter.hit("b", 1)]
            clock[0] += 2
            seen.append(await counter.hit("a", 60))  # "a" and "b" ended; "a" starts again, "b" goes
            async with engine.connect() as conn:
                rows = (await conn.exec_driver_sql("SELECT key FROM rate_limit_counter")).all()
            seen.append(len(rows))
            return seen
        finally:
            await engine.dispose()

    assert asyncio.run(go()) == [1, 2, 1, 1, 1]


def test_redis_counter_lets_exactly_the_limit_through() -> None:
    if not _redis_answers():
        missing("Redis does not answer on 127.0.0.1:6379")

    async def go() -> tuple[int, int | None]:
        client: Redis[Any] = Redis.from_url("redis://127.0.0.1:6379/0")
        prefix = f"test:{secrets.token_hex(6)}:"
        counter = RedisCounter(client, prefix=prefix)
        try:
            passed = await _passed(Limiter(counter), "k")
            return passed, await client.ttl(prefix + "k")
        finally:
            await client.delete(prefix + "k")
            await counter.close()

    passed, ttl = asyncio.run(go())
    assert passed == 10
    assert ttl is not None
    assert 0 < ttl <= 60


TRUSTED = parse_networks(["127.0.0.1", "10.0.0.0/8", "::1"])


def _scope(peer: str, *forwarded: str) -> dict[str, Any]:
    return {"client": (peer, 5000), "headers": [(b"x-forwarded-for", f.encode()) for f in forwarded]}


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        (_scope("203.0.113.5", "198.51.100.1"), "203.0.113.5"),  # untrusted peer: its header is ignored
        (_scope("127.0.0.1"), "127.0.0.1"),  # trusted peer, no header
        (_scope("127.0.0.1", "198.51.100.1"), "198.51.100.1"),
        (_scope("127.0.0.1", "6.6.6.6, 198.51.100.1"), "198.51.100.1"),  # the client wrote the left hop
        (_scope("127.0.0.1", "198.51.100.1, 10.1.2.3"), "198.51.100.1"),  # through two proxies
        (_scope("127.0.0.1", "6.6.6.6", "198.51.100.1, 10.1.2.3"), "198.51.100.1"),  # several headers
        (_scope("127.0.0.1", "10.9.9.9, 10.1.2.3"), "10.9.9.9"),  # every hop trusted: the farthest
        (_scope("::1", "2001:db8::1"), "2001:db8::/64"),  # one counter per IPv6 /64
        (_scope("::1", "2001:DB8:0::1:ff"), "2001:db8::/64"),  # written any way, the same /64
        (_scope("127.0.0.1", "::ffff:198.51.100.1"), "198.51.100.1"),  # IPv4-mapped is IPv4
        (_scope("::ffff:127.0.0.1", "198.51.100.1"), "198.51.100.1"),  # a dual-stack proxy is trusted
        (_scope("127.0.0.1", "198.51.100.1:5555"), "198.51.100.1"),  # a port is not part of the client
        (_scope("127.0.0.1", "[2001:db8::7]:443"), "2001:db8::/64"),
        (_scope("127.0.0.1", "not-an-address"), "127.0.0.1"),  # an unreadable hop proves nothing
    ],
)
def test_client_address(scope: dict[str, Any], expected: str) -> None:
    assert client_address(scope, TRUSTED) == expected


def test_client_address_trusts_nobody_by_default() -> None:
    assert client_address(_scope("127.0.0.1", "198.51.100.1"), ()) == "127.0.0.1"


def test_trusted_proxies_setting() -> None:
    assert trusted_proxies("") == ()
    assert trusted_proxies("127.0.0.1, 10.0.0.0/8 ::1") == ("127.0.0.1/32", "10.0.0.0/8", "::1/128")
    with pytest.raises(SettingsError, match="not-an-ip"):
        trusted_proxies("10.0.0.1,not-an-ip")


def test_in_the_app_sql_counts_go_through_the_money_writer_on_sqlite(settings: Settings) -> None:
    """Each hit is a writer operation there (not a transaction taking SQLite's write lock), and
    the limit still holds exactly under 60 concurrent attempts."""
    app = create_app(replace(settings, redis_url=""))
    limiter: Limiter = app.state[limits.STATE_KEY]
    assert isinstance(limiter.counter, SQLCounter)
    writer = recording_writer(settings.database_url) if settings.is_sqlite else None
    if writer is not None:
        app.state[WRITER_KEY] = writer

    async def go() -> int:
        async with limiter.lifespan(app):
            passed = await _passed(limiter, "k")
        if writer is not None:
            await writer.close()
        return passed

    assert asyncio.run(go()) == 10
    if writer is not None:
        assert writer.background == ["_hit"] * 60
    else:  # PostgreSQL: row locks; the counter's own short transactions
        assert limiter.counter.writer is None
