"""No session row for a visitor who is not signed in, on any route; expired rows are purged."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select

from app.db.base import KeyValueStore
from app.db.config import make_engine
from app.settings import Settings
from tests.accounts.support import client_for, csrf, is_signed_in, post_form, sign_in, sign_up


def _rows(settings: Settings) -> int:
    async def go() -> int:
        engine = make_engine(settings)
        try:
            async with engine.connect() as conn:
                return int((await conn.execute(select(func.count()).select_from(KeyValueStore))).scalar_one())
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_anonymous_requests_make_no_session_rows(app_settings: Settings) -> None:
    with client_for(app_settings) as client:
        token = csrf(client)
        for _ in range(20):
            assert (
                client.post("/sign-out", data={"_csrf_token": token}, follow_redirects=False).status_code
                == 303
            )
        client.get("/", follow_redirects=True)
        for path in (
            "/",
            "/sign-in",
            "/sign-up",
            "/language/zh?next=/",
            "/language/en",
            "/account",
            "/pricing",
        ):
            client.get(path)
        sign_in(client, "nobody@example.com", password="wrong password")
        post_form(client, "/sign-up", email="bad", password="short")
        client.post("/checkout", data={"_csrf_token": token, "pack": "coins-100"}, follow_redirects=False)
    with client_for(app_settings) as fresh:
        assert fresh.post("/sign-out", data={"_csrf_token": csrf(fresh)}).status_code == 200
    assert _rows(app_settings) == 0


def test_sign_out_removes_the_row_and_still_says_so(app_settings: Settings) -> None:
    with client_for(app_settings, **{"accept-language": "en"}) as client:
        sign_up(client, "sam@example.com")
        assert _rows(app_settings) == 1
        response = client.post("/sign-out", data={"_csrf_token": csrf(client)}, follow_redirects=False)
        assert response.status_code == 303
        assert _rows(app_settings) == 0
        page = client.get("/")
        assert "You have signed out." in page.text
        assert "You have signed out." not in client.get("/").text  # shown once
        assert not is_signed_in(client)
        assert sign_in(client, "sam@example.com").status_code == 303
        assert _rows(app_settings) == 1


def test_a_forged_flash_cookie_is_ignored(app_settings: Settings) -> None:
    with client_for(app_settings) as client:
        forged = base64.urlsafe_b64encode(b'[{"message":"FORGED-MSG","category":"info"}]').decode()
        client.cookies.set("flash", forged + ".0000")
        assert "FORGED-MSG" not in client.get("/sign-in").text


def test_expired_sessions_are_purged_when_sessions_are_written(app_settings: Settings) -> None:
    async def plant() -> None:
        engine = make_engine(app_settings)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    insert(KeyValueStore).values(
                        key="old",
                        namespace="sessions",
                        value=b"{}",
                        expires_at=datetime.now(UTC) - timedelta(days=1),
                    )
                )
        finally:
            await engine.dispose()

    asyncio.run(plant())
    assert _rows(app_settings) == 1
    with client_for(app_settings) as client:
        sign_up(client, "pia@example.com")
    assert _rows(app_settings) == 1  # the new session only
