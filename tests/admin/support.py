"""Helpers for the admin tests: accounts made straight in the database, signed-in test clients."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from litestar.testing import TestClient
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.accounts.service import create_user
from app.db.config import make_engine
from app.settings import Settings
from app.web.factory import create_app
from tests.accounts.support import PASSWORD, csrf, run, sign_in

ADMIN_EMAIL = "admin@example.com"
BUYER_EMAIL = "buyer@example.com"


def make_user(settings: Settings, email: str, *, is_admin: bool = False) -> int:
    """Create an account (``storefront users create-admin`` does the same for admins); its id."""

    async def go() -> int:
        engine = make_engine(settings)
        try:
            async with async_sessionmaker(engine)() as db, db.begin():
                user = await create_user(db, email, PASSWORD, is_admin=is_admin)
                return int(user.id)
        finally:
            await engine.dispose()

    return int(run(go()))


@contextmanager
def client_as(settings: Settings, email: str | None) -> Iterator[TestClient[Any]]:
    """An in-process client, signed in as ``email`` (None: an anonymous visitor) with a CSRF cookie."""
    with TestClient(create_app(settings), base_url="http://testserver.local") as client:
        client.headers.update({"accept": "text/html", "accept-language": "en"})
        csrf(client)
        if email is not None:
            assert sign_in(client, email).status_code == 303
        yield client


def admin_post(client: TestClient[Any], path: str, **fields: str) -> Any:
    """A form POST with the CSRF token, as the console's forms send it."""
    return client.post(path, data={"_csrf_token": csrf(client), **fields}, follow_redirects=False)


def insert_rows(settings: Settings, table: Any, rows: list[dict[str, Any]]) -> list[Any]:
    """Insert rows (Core, so column defaults apply) in one transaction; their ids."""

    async def go() -> list[Any]:
        engine = make_engine(settings)
        try:
            async with engine.begin() as conn:
                ids = []
                for row in rows:
                    result = await conn.execute(insert(table).values(**row).returning(table.c.id))
                    ids.append(result.scalar_one())
                return ids
        finally:
            await engine.dispose()

    return list(run(go()))


def an_order(user_id: int, **values: Any) -> dict[str, Any]:
    """A purchase_order row as checkout snapshots it (coins-100 unless told otherwise)."""
    base: dict[str, Any] = {
        "user_id": user_id,
        "pack_id": "coins-100",
        "pack_name": "100 coins",
        "asset": "coins",
        "units": 100,
        "bonus": 0,
        "amount": 199,
        "currency": "usd",
        "status": "open",
    }
    return {**base, **values}
