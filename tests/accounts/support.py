"""Helpers for driving the account pages like a browser: CSRF cookie, forms, row counts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from litestar.testing import TestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.accounts.models import User
from app.db.config import make_engine
from app.settings import Settings
from app.web.factory import create_app

PASSWORD = "correct horse battery"


@contextmanager
def client_for(settings: Settings, **headers: str) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(settings), base_url="http://testserver.local") as client:
        client.headers.update(headers)
        yield client


def csrf(client: TestClient[Any], path: str = "/sign-in") -> str:
    """Load a page first, as a browser would, to get the CSRF cookie."""
    if "csrftoken" not in client.cookies:
        client.get(path)
    return str(client.cookies["csrftoken"])


def post_form(client: TestClient[Any], path: str, **fields: str) -> Any:
    data = {"_csrf_token": csrf(client), **fields}
    return client.post(path, data=data, follow_redirects=False)


def sign_up(client: TestClient[Any], email: str, password: str = PASSWORD, **extra: str) -> Any:
    return post_form(client, "/sign-up", email=email, password=password, **extra)


def sign_in(client: TestClient[Any], email: str, password: str = PASSWORD, **extra: str) -> Any:
    return post_form(client, "/sign-in", email=email, password=password, **extra)


def is_signed_in(client: TestClient[Any]) -> bool:
    """The layout shows the sign-out button only to a signed-in visitor."""
    page = client.get("/sign-in", headers={"accept-language": "en"}).text
    return 'action="/sign-out"' in page


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def users(settings: Settings) -> list[User]:
    async def go() -> list[User]:
        engine = make_engine(settings)
        try:
            async with async_sessionmaker(engine)() as session:
                return list((await session.execute(select(User).order_by(User.id))).scalars())
        finally:
            await engine.dispose()

    return list(run(go()))


def user_count(settings: Settings) -> int:
    async def go() -> int:
        engine = make_engine(settings)
        try:
            async with async_sessionmaker(engine)() as session:
                return int((await session.execute(select(func.count()).select_from(User))).scalar_one())
        finally:
            await engine.dispose()

    return int(run(go()))
