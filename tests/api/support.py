"""Helpers for the host API tests: server keys made in the database, bearer headers, row reads."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from litestar.testing import TestClient
from sqlalchemy import text

from app.api.keys import create_key
from app.db.config import make_engine
from app.settings import Settings
from app.web.factory import create_app

PROBLEM = "application/problem+json"


def make_key(
    settings: Settings, scopes: tuple[str, ...] = ("read", "spend", "grant"), *, live: bool = False
) -> str:
    async def go() -> str:
        engine = make_engine(settings)
        try:
            async with engine.begin() as conn:
                made = await conn.run_sync(lambda c: create_key(c, name="test", scopes=scopes, live=live))
            return made.key
        finally:
            await engine.dispose()

    return asyncio.run(go())


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def rows(settings: Settings, sql: str, **params: Any) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        engine = make_engine(settings)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(text(sql), params)
                return [dict(r._mapping) for r in result] if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(go())


@contextmanager
def api_client(settings: Settings) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(settings), base_url="http://testserver.local") as client:
        yield client


def assert_problem(response: Any, status: int, code: str, param: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status and code (and param, when given)."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith(PROBLEM), response.headers["content-type"]
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code, body
    assert body["type"].endswith("/" + code)
    assert body["title"]
    if param is not None:
        assert body.get("param") == param, body
    return body
