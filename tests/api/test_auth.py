"""Bearer server keys on /api/v1: 401 without a live key, 403 without the scope, 429 beyond the rate."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import text, update

from app.api.keys import hash_key
from app.api.models import ServerKey
from app.db.config import make_engine
from app.settings import Settings
from tests.api.support import api_client, assert_problem, bearer, make_key, rows
from tests.conftest import missing

PATH = "/api/v1/customers"


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing_api_key"),
        ("", "missing_api_key"),
        ("Basic dXNlcjpwYXNz", "malformed_authorization"),
        ("Bearer", "malformed_authorization"),
        ("Bearer ", "malformed_authorization"),
        ("Bearer a b", "malformed_authorization"),
        ("Bearer sf_test_unknown", "invalid_api_key"),
        ("Bearer " + "x" * 5000, "invalid_api_key"),
    ],
)
def test_without_a_valid_key_it_is_401(api_settings: Settings, header: str | None, code: str) -> None:
    make_key(api_settings)
    headers = {} if header is None else {"Authorization": header}
    with api_client(api_settings) as client:
        response = client.get(PATH, headers=headers)
    assert_problem(response, 401, code)
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_revoked_key_is_401(api_settings: Settings) -> None:
    key = make_key(api_settings)
    with api_client(api_settings) as client:
        assert client.get(PATH, headers=bearer(key)).status_code == 200
        rows(api_settings, "UPDATE server_key SET revoked_at = CURRENT_TIMESTAMP")
        assert_problem(client.get(PATH, headers=bearer(key)), 401, "invalid_api_key")


def test_the_bearer_scheme_is_case_insensitive(api_settings: Settings) -> None:
    key = make_key(api_settings)
    with api_client(api_settings) as client:
        assert client.get(PATH, headers={"Authorization": f"bearer {key}"}).status_code == 200


def test_a_key_without_the_scope_is_403_and_changes_nothing(api_settings: Settings) -> None:
    read_only = make_key(api_settings, ("read",))
    spend = make_key(api_settings, ("spend",))
    with api_client(api_settings) as client:
        body = {"email": "a@example.com"}
        assert_problem(
            client.put(PATH + "/a", json=body, headers=bearer(read_only)), 403, "insufficient_scope"
        )
        assert rows(api_settings, "SELECT id FROM user_account") == []
        assert_problem(client.get(PATH + "/a", headers=bearer(spend)), 403, "insufficient_scope")
        assert client.put(PATH + "/a", json=body, headers=bearer(spend)).status_code == 201
        assert client.get(PATH + "/a", headers=bearer(read_only)).status_code == 200


def _last_used(settings: Settings) -> Any:
    [row] = rows(settings, "SELECT last_used_at FROM server_key")
    return row["last_used_at"]


def _set_last_used(settings: Settings, when: datetime) -> None:
    async def go() -> None:
        engine = make_engine(settings)
        try:
            async with engine.begin() as conn:
                await conn.execute(update(ServerKey.__table__).values(last_used_at=when))
        finally:
            await engine.dispose()

    asyncio.run(go())


def test_last_used_is_written_at_most_once_a_minute(api_settings: Settings) -> None:
    key = make_key(api_settings)
    assert _last_used(api_settings) is None
    with api_client(api_settings) as client:
        client.get(PATH, headers=bearer(key))
        first = _last_used(api_settings)
        assert first is not None
        for _ in range(3):
            client.get(PATH, headers=bearer(key))
        assert _last_used(api_settings) == first
        _set_last_used(api_settings, datetime(2020, 1, 1, tzinfo=UTC))
        client.get(PATH, headers=bearer(key))
        assert str(_last_used(api_settings)) > "2026"


def _redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def _redis(settings: Settings) -> Settings:
    if not _redis_answers():
        missing("Redis does not answer on 127.0.0.1:6379")
    return replace(settings, redis_url="redis://127.0.0.1:6379/0")


@pytest.mark.parametrize("counters", ["database", "redis"])
def test_the_rate_per_key_is_shared_by_replicas(api_settings: Settings, counters: str) -> None:
    settings = replace(api_settings, api_rate_per_minute=5)
    if counters == "redis":
        settings = _redis(settings)
    key, other = make_key(settings), make_key(settings)
    with api_client(settings) as one, api_client(settings) as two:
        statuses = [(one if n % 2 else two).get(PATH, headers=bearer(key)).status_code for n in range(7)]
        assert statuses == [200] * 5 + [429] * 2
        refused = one.get(PATH, headers=bearer(key))
        assert_problem(refused, 429, "rate_limited")
        assert int(refused.headers["retry-after"]) == 60
        assert two.get(PATH, headers=bearer(other)).status_code == 200  # another key has its own budget


def test_a_read_does_not_wait_for_the_sqlite_write_lock(sqlite_api_settings: Settings) -> None:
    """With Redis counting calls, a GET whose key was used within the minute writes nothing."""
    settings = _redis(sqlite_api_settings)
    key = make_key(settings)
    with api_client(settings) as client:
        assert (
            client.put(PATH + "/c1", json={"email": "c1@example.com"}, headers=bearer(key)).status_code == 201
        )

        async def hold_the_lock_and_read() -> tuple[int, float]:
            engine = make_engine(settings)
            try:
                async with engine.begin() as conn:  # BEGIN IMMEDIATE: the write lock
                    await conn.execute(text("UPDATE server_key SET name = 'busy'"))
                    started = time.monotonic()
                    response = await asyncio.to_thread(client.get, PATH + "/c1", headers=bearer(key))
                    return response.status_code, time.monotonic() - started
            finally:
                await engine.dispose()

        status, took = asyncio.run(hold_the_lock_and_read())
    assert status == 200
    assert took < 5


def test_keys_are_looked_up_by_hash(api_settings: Settings) -> None:
    key = make_key(api_settings)
    [row] = rows(api_settings, "SELECT key_hash FROM server_key")
    assert row["key_hash"] == hash_key(key) != key


def test_pages_elsewhere_are_untouched(client: TestClient[Any]) -> None:
    page = client.get("/", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    missing_page = client.get("/nowhere", headers={"accept": "text/html"})
    assert missing_page.status_code == 404
    assert "text/html" in missing_page.headers["content-type"]


def test_a_cached_key_is_trusted_for_its_seconds_then_looked_up_again(api_settings: Settings) -> None:
    """Each process trusts a key it looked up for ``api_key_cache_seconds``: a revocation lands by then."""
    cached = replace(api_settings, api_key_cache_seconds=0.5)
    key = make_key(cached)
    with api_client(cached) as client:
        client.headers.update(bearer(key))
        assert client.get("/api/v1/customers").status_code == 200
        rows(cached, "UPDATE server_key SET revoked_at = CURRENT_TIMESTAMP")
        still = client.get("/api/v1/customers")  # within the half second: the cached look-up
        time.sleep(0.6)
        assert_problem(client.get("/api/v1/customers"), 401, "invalid_api_key")
    assert still.status_code == 200
