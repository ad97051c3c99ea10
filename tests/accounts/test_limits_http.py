"""Sign-in limits against a real server: concurrent attempts, proxies, per-account back-off.

Each test sends from its own random address (through a trusted ``X-Forwarded-For``) and emails,
so tests sharing one Redis never share a bucket.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections import Counter
from dataclasses import replace

import httpx
import pytest

from app.settings import Settings
from app.web.factory import create_app
from tests.accounts.support import PASSWORD
from tests.conftest import missing
from tests.support.servers import serve_in_thread

LIMIT = 10


def _address() -> str:
    return f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


def _redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(params=["database", "redis"])
def limit_settings(request: pytest.FixtureRequest, app_settings: Settings) -> Settings:
    """Behind one trusted proxy (this machine), counters in the database or in Redis."""
    settings = replace(app_settings, trusted_proxies=("127.0.0.1",))
    if request.param == "redis":
        if not _redis_answers():
            missing("Redis does not answer on 127.0.0.1:6379")
        settings = replace(settings, redis_url="redis://127.0.0.1:6379/0")
    return settings


async def _attempts(base: str, posts: list[tuple[str, str, str]], *replicas: str) -> list[int]:
    """``(address, email, password)`` sign-in posts sent all at once, spread over ``base`` and
    ``replicas`` in turn; their status codes."""
    bases = [base, *replicas]
    async with httpx.AsyncClient(timeout=60) as client:
        await client.get(base + "/sign-in")
        token = client.cookies["csrftoken"]

        async def post(n: int, address: str, email: str, password: str) -> int:
            response = await client.post(
                bases[n % len(bases)] + "/sign-in",
                data={"_csrf_token": token, "email": email, "password": password},
                headers={"x-forwarded-for": address},
            )
            return response.status_code

        return list(await asyncio.gather(*(post(n, *p) for n, p in enumerate(posts))))


def _sign_up(base: str, email: str) -> None:
    with httpx.Client(base_url=base) as client:
        client.get("/sign-up")
        response = client.post(
            "/sign-up",
            data={"_csrf_token": client.cookies["csrftoken"], "email": email, "password": PASSWORD},
            headers={"x-forwarded-for": _address()},
        )
        assert response.status_code == 303


def test_concurrent_sign_ins_from_one_address_pass_exactly_the_limit(limit_settings: Settings) -> None:
    """Two replicas on one database (or Redis), sixty attempts at once from one address."""
    address = _address()
    posts = [(address, f"{secrets.token_hex(4)}@example.com", "wrong password") for _ in range(60)]
    with (
        serve_in_thread(create_app(limit_settings)) as one,
        serve_in_thread(create_app(limit_settings)) as two,
    ):
        codes = Counter(asyncio.run(_attempts(one, posts, two)))
    assert codes == {401: LIMIT, 429: 60 - LIMIT}


def test_concurrent_sign_ins_on_one_account_pass_exactly_the_limit(limit_settings: Settings) -> None:
    """Per account, whatever the address: sixty addresses, one email."""
    email = f"{secrets.token_hex(4)}@example.com"
    posts = [(_address(), email, "wrong password") for _ in range(60)]
    with serve_in_thread(create_app(limit_settings)) as base:
        _sign_up(base, email)
        codes = Counter(asyncio.run(_attempts(base, posts)))
        assert codes == {401: LIMIT, 429: 60 - LIMIT}
        # Backed off: even the right password waits for the window.
        assert asyncio.run(_attempts(base, [(_address(), email, PASSWORD)])) == [429]


def test_a_successful_sign_in_clears_the_account_counter(limit_settings: Settings) -> None:
    email = f"{secrets.token_hex(4)}@example.com"
    with serve_in_thread(create_app(limit_settings)) as base:
        _sign_up(base, email)
        wrong = [(_address(), email, "wrong password") for _ in range(LIMIT - 1)]
        assert asyncio.run(_attempts(base, wrong)) == [401] * (LIMIT - 1)
        assert asyncio.run(_attempts(base, [(_address(), email, PASSWORD)])) == [303]
        wrong = [(_address(), email, "wrong password") for _ in range(LIMIT)]
        assert asyncio.run(_attempts(base, wrong)) == [401] * LIMIT


def test_forwarded_for_is_read_only_from_trusted_proxies(app_settings: Settings) -> None:
    """Untrusted peer: a rotated ``X-Forwarded-For`` is ignored. Trusted peer: its right-most hop
    is the client, so what the client wrote to the left of it proves nothing, and two clients
    behind the proxy get their own buckets."""
    settings = replace(app_settings, trusted_proxies=())
    email = lambda: f"{secrets.token_hex(4)}@example.com"  # noqa: E731
    with serve_in_thread(create_app(settings)) as base:
        rotated = [(_address(), email(), "x") for _ in range(LIMIT + 1)]
        assert Counter(asyncio.run(_attempts(base, rotated))) == {401: LIMIT, 429: 1}
    settings = replace(app_settings, trusted_proxies=("127.0.0.0/8",))
    with serve_in_thread(create_app(settings)) as base:
        client = _address()
        spoofed = [(f"{_address()}, {client}", email(), "x") for _ in range(LIMIT + 1)]
        assert Counter(asyncio.run(_attempts(base, spoofed))) == {401: LIMIT, 429: 1}
        assert asyncio.run(_attempts(base, [(f"{client}, 127.0.0.9", email(), "x")])) == [429]
        assert asyncio.run(_attempts(base, [(_address(), email(), "x")])) == [401]
