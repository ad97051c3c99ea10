"""``Idempotency-Key``: replays, conflicts and concurrent duplicates, on both databases.

Over HTTP through the sign-in-link endpoint (the request-transaction form, ``Idempotency.answer``)
and directly through the money writer (the operation form, ``once``), whose batches put
duplicates in one transaction (SQLite) or race them over lanes (PostgreSQL).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest
from litestar.testing import TestClient
from sqlalchemy import text

from app.api.idempotency import RETENTION, Answer, once, purge, request_hash
from app.db.config import make_engine
from app.db.sql import SqlConnection
from app.db.writer import PostgresWriter, SqliteWriter, Writer
from app.settings import Settings
from app.web.factory import create_app
from tests.api.support import api_client, assert_problem, bearer, make_key, rows
from tests.support.servers import serve_in_thread

LINKS = "/api/v1/customers/cust/sign-in-links"


@pytest.fixture
def api(api_settings: Settings, key: str) -> Iterator[TestClient[Any]]:
    with api_client(api_settings) as client:
        client.headers.update(bearer(key))
        assert client.put("/api/v1/customers/cust", json={"email": "cust@example.com"}).status_code == 201
        yield client


def _links(settings: Settings) -> int:
    return len(rows(settings, "SELECT token_hash FROM sign_in_link"))


def test_the_same_key_replays_the_first_answer(api: TestClient[Any], api_settings: Settings) -> None:
    first = api.post(LINKS, json={"next": "/account"}, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    again = api.post(LINKS, json={"next": "/account"}, headers={"Idempotency-Key": "k-1"})
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["content-type"].startswith("application/json")
    assert again.json() == first.json()
    assert _links(api_settings) == 1
    other = api.post(LINKS, json={"next": "/account"}, headers={"Idempotency-Key": "k-2"})
    assert other.json()["url"] != first.json()["url"]
    plain = [api.post(LINKS, json={"next": "/account"}).status_code for _ in range(2)]
    assert plain == [201, 201]
    assert _links(api_settings) == 4


def test_the_same_key_with_another_body_is_409(api: TestClient[Any], api_settings: Settings) -> None:
    api.post(LINKS, json={"next": "/account"}, headers={"Idempotency-Key": "k"})
    reused = api.post(LINKS, json={"next": "/other"}, headers={"Idempotency-Key": "k"})
    assert_problem(reused, 409, "idempotency_key_reused", "Idempotency-Key")
    elsewhere = api.post(
        "/api/v1/customers/nobody/sign-in-links", json={"next": "/account"}, headers={"Idempotency-Key": "k"}
    )
    assert_problem(elsewhere, 409, "idempotency_key_reused")  # the path is part of the request
    assert _links(api_settings) == 1


def test_keys_belong_to_their_server_key(api: TestClient[Any], api_settings: Settings) -> None:
    first = api.post(LINKS, json={}, headers={"Idempotency-Key": "shared"})
    theirs = api.post(LINKS, json={}, headers={"Idempotency-Key": "shared", **bearer(make_key(api_settings))})
    assert theirs.status_code == 201
    assert "idempotent-replayed" not in theirs.headers
    assert theirs.json()["url"] != first.json()["url"]


def test_a_refusal_that_rolled_back_can_be_retried(api_settings: Settings, key: str) -> None:
    with api_client(api_settings) as client:
        client.headers.update(bearer(key))
        path = "/api/v1/customers/later/sign-in-links"
        assert_problem(
            client.post(path, json={}, headers={"Idempotency-Key": "r"}), 404, "customer_not_found"
        )
        assert rows(api_settings, "SELECT key FROM idempotent_request") == []
        client.put("/api/v1/customers/later", json={"email": "later@example.com"})
        retried = client.post(path, json={}, headers={"Idempotency-Key": "r"})
        assert retried.status_code == 201
        assert "idempotent-replayed" not in retried.headers


@pytest.mark.parametrize("header", ["x" * 201, "has space", "ключ", "", "tab\there"])
def test_bad_keys_are_422(api: TestClient[Any], api_settings: Settings, header: str) -> None:
    response = api.post(LINKS, json={}, headers={"Idempotency-Key": header.encode()})
    assert_problem(response, 422, "invalid_request", "Idempotency-Key")
    assert _links(api_settings) == 0


def test_concurrent_duplicates_make_one_change(api_settings: Settings, key: str) -> None:
    with api_client(api_settings) as client:
        client.put("/api/v1/customers/cust", json={"email": "cust@example.com"}, headers=bearer(key))

    async def race(base: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=base, headers=bearer(key), timeout=60) as http:
            return list(
                await asyncio.gather(
                    *(
                        http.post(LINKS, json={"next": "/account"}, headers={"Idempotency-Key": "race"})
                        for _ in range(8)
                    )
                )
            )

    with serve_in_thread(create_app(api_settings)) as base:
        answers = asyncio.run(race(base))
    assert [a.status_code for a in answers] == [201] * 8
    assert len({a.json()["url"] for a in answers}) == 1
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 7
    assert _links(api_settings) == 1
    [stored] = rows(api_settings, "SELECT status_code, response FROM idempotent_request")
    assert stored["status_code"] == 201
    assert msgspec.json.decode(stored["response"]) == answers[0].json()


# --- the operation form, through the money writer ------------------------------------------------


class Made(msgspec.Struct):
    n: int


def _change(n: int) -> Any:
    def change(conn: SqlConnection) -> tuple[int, Any]:
        conn.execute(
            text("INSERT INTO rate_limit_counter (key, hits, expires_at) VALUES (:k, 1, 0)"),
            {"k": f"change-{n}"},
        )
        return 201, Made(n)

    return change


def _writer(settings: Settings) -> tuple[Writer, Any]:
    if settings.is_sqlite:
        return SqliteWriter(settings.database_url), None
    engine = make_engine(settings)
    return PostgresWriter(engine, lanes=4), engine


def _changes(settings: Settings) -> int:
    return len(rows(settings, "SELECT key FROM rate_limit_counter WHERE key LIKE 'change-%'"))


def _duplicate(n: int) -> Any:
    def op(conn: SqlConnection) -> Answer:
        return once(conn, server_key_id=1, operation="test", key="dup", request={"a": 1}, change=_change(n))

    return op


def test_concurrent_duplicates_in_the_writer_make_one_change(api_settings: Settings) -> None:
    async def go() -> list[Answer]:
        writer, engine = _writer(api_settings)
        try:
            ops = [_duplicate(n) for n in range(10)]
            return list(await asyncio.gather(*(writer.call(op) for op in ops)))
        finally:
            await writer.close()
            if engine is not None:
                await engine.dispose()

    answers = asyncio.run(go())
    assert _changes(api_settings) == 1
    firsts = [a for a in answers if not a.replayed]
    assert len(firsts) == 1
    assert {a.body for a in answers} == {firsts[0].body}
    assert {a.status_code for a in answers} == {201}


def test_a_returned_refusal_is_stored_and_replayed(api_settings: Settings) -> None:
    def refuse(conn: SqlConnection) -> tuple[int, Any]:
        return 409, {"code": "insufficient_balance", "status": 409}

    async def go() -> list[Answer]:
        writer, engine = _writer(api_settings)
        try:
            results = []
            for body in ({"u": 5}, {"u": 5}, {"u": 6}):
                results.append(
                    await writer.call(
                        lambda conn, body=body: once(
                            conn, server_key_id=7, operation="debit", key="k", request=body, change=refuse
                        )
                    )
                )
            return results
        finally:
            await writer.close()
            if engine is not None:
                await engine.dispose()

    first, again, other = asyncio.run(go())
    assert (first.status_code, first.replayed) == (409, False)
    assert (again.status_code, again.replayed, again.body) == (409, True, first.body)
    assert other.status_code == 409
    assert msgspec.json.decode(other.body)["code"] == "idempotency_key_reused"


def test_old_answers_are_purged(api_settings: Settings) -> None:
    now = int(time.time())
    for key, created in (("old", now - RETENTION - 1), ("new", now - RETENTION + 60)):
        rows(
            api_settings,
            "INSERT INTO idempotent_request (key, request_hash, status_code, response, created_at) "
            "VALUES (:k, 'h', 200, '{}', :c)",
            k=key,
            c=created,
        )

    async def go() -> None:
        engine = make_engine(api_settings)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(purge, now=now)
        finally:
            await engine.dispose()

    asyncio.run(go())
    assert [r["key"] for r in rows(api_settings, "SELECT key FROM idempotent_request")] == ["new"]


def test_the_request_hash_is_canonical() -> None:
    assert request_hash({"a": 1, "b": [1, 2]}) == request_hash({"b": [1, 2], "a": 1})
    assert request_hash({"a": 1}) != request_hash({"a": 2})
    assert request_hash(("x", Made(1))) == request_hash(["x", {"n": 1}])
