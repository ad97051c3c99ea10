"""Sign up, sign in, sign out through real HTTP handling, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Request, get
from litestar.testing import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.auth import current_user, require_user, safe_next
from app.accounts.models import User
from app.settings import Settings
from app.web.factory import create_app
from tests.accounts.support import (
    PASSWORD,
    client_for,
    csrf,
    is_signed_in,
    post_form,
    sign_in,
    sign_up,
    user_count,
    users,
)

GENERIC = "That email and password do not match an account."


def test_sign_up_creates_a_normalised_account_and_signs_in(app_settings: Settings) -> None:
    with client_for(app_settings) as client:
        response = sign_up(client, "  Alice@Example.COM ")
        assert response.status_code == 303
        assert response.headers["location"] == "/account"
        assert is_signed_in(client)
    [user] = users(app_settings)
    assert user.email == "alice@example.com"
    assert user.password_hash.startswith("$argon2")
    assert PASSWORD not in user.password_hash
    assert not user.is_admin


def test_sign_up_page_keeps_a_local_next(app_settings: Settings) -> None:
    with client_for(app_settings) as client:
        page = client.get("/sign-up?next=/checkout/coins-100")
        assert page.status_code == 200
        assert 'name="next" value="/checkout/coins-100"' in page.text
        response = sign_up(client, "bob@example.com", next="/checkout/coins-100?x=1")
        assert response.headers["location"] == "/checkout/coins-100?x=1"


@pytest.mark.parametrize(
    "evil", ["//evil.com", "https://evil.com", "/\\evil.com", "\\\\evil.com", "evil.com", "/\t/evil.com", ""]
)
def test_next_accepts_only_local_paths(app_settings: Settings, evil: str) -> None:
    with client_for(app_settings) as client:
        sign_up(client, "carol@example.com")
        client.post("/sign-out", data={"_csrf_token": csrf(client)})
        response = sign_in(client, "carol@example.com", next=evil)
        assert response.status_code == 303
        assert response.headers["location"] == "/account"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/account", "/account"),
        ("/a/b?c=d", "/a/b?c=d"),
        ("//evil.com", "/account"),
        ("https://evil.com/x", "/account"),
        ("/\\evil.com", "/account"),
        ("/\nx", "/account"),
        (None, "/account"),
        ("javascript:alert(1)", "/account"),
    ],
)
def test_safe_next(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


def test_same_email_twice_is_refused_and_writes_nothing(app_settings: Settings) -> None:
    with client_for(app_settings) as client:
        assert sign_up(client, "dora@example.com").status_code == 303
        client.post("/sign-out", data={"_csrf_token": csrf(client)})
        response = sign_up(client, "DORA@example.com ", password="another password")
        assert response.status_code == 409
        assert "An account with this email already exists." in response.text
        assert 'value="dora@example.com"' in response.text
        assert "another password" not in response.text
        assert not is_signed_in(client)
    assert user_count(app_settings) == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "Please enter your email address."),
        ({"email": "not-an-email", "password": PASSWORD}, "Please enter a valid email address"),
        ({"email": "a@b", "password": PASSWORD}, "Please enter a valid email address"),
        ({"email": "a b@example.com", "password": PASSWORD}, "Please enter a valid email address"),
        ({"email": "eve@example.com", "password": "short"}, "at least 8 characters"),
        ({"email": "eve@example.com", "password": "x" * 1025}, "at most 1,024 characters"),
        ({"email": "eve@example.com"}, "at least 8 characters"),
    ],
)
def test_bad_sign_up_gets_inline_errors_and_writes_nothing(
    app_settings: Settings, fields: dict[str, str], message: str
) -> None:
    with client_for(app_settings) as client:
        response = post_form(client, "/sign-up", **fields)
        assert response.status_code == 400
        assert message in response.text
        assert 'role="alert"' in response.text
        if "password" in fields:
            assert f'value="{fields["password"]}"' not in response.text
    assert user_count(app_settings) == 0


def test_bad_sign_up_in_chinese(app_settings: Settings) -> None:
    with client_for(app_settings, **{"accept-language": "zh-CN,zh;q=0.9"}) as client:
        response = post_form(client, "/sign-up", email="nope", password="short")
        assert response.status_code == 400
        assert "请输入有效的电子邮箱" in response.text
        assert "密码至少需要 8 个字符" in response.text


def test_wrong_password_and_unknown_email_get_the_same_answer(app_settings: Settings) -> None:
    with client_for(app_settings) as client:
        sign_up(client, "fay@example.com")
        client.post("/sign-out", data={"_csrf_token": csrf(client)})
        wrong = sign_in(client, "fay@example.com", password="wrong password")
        unknown = sign_in(client, "nobody@example.com", password="wrong password")
        for response in (wrong, unknown):
            assert response.status_code == 401
            assert GENERIC in response.text
            assert "wrong password" not in response.text
        assert 'value="fay@example.com"' in wrong.text
        assert not is_signed_in(client)
        empty = post_form(client, "/sign-in")
        assert empty.status_code == 400
        assert "Please enter your email address and password." in empty.text


def test_sign_in_rotates_the_session_id(app_settings: Settings) -> None:
    with client_for(app_settings) as client:
        sign_up(client, "gus@example.com")
        client.post("/sign-out", data={"_csrf_token": csrf(client)})
        client.get("/sign-in")
        before = client.cookies.get("session")
        assert before
        response = sign_in(client, "Gus@example.com")
        assert response.status_code == 303
        after = client.cookies.get("session")
        assert after
        assert after != before
        assert is_signed_in(client)
    with client_for(app_settings) as stolen:
        stolen.cookies.set("session", before)
        assert not is_signed_in(stolen)
    with client_for(app_settings) as same:
        same.cookies.set("session", after)
        assert is_signed_in(same)


def test_sign_out_ends_the_session(app_settings: Settings) -> None:
    with client_for(app_settings) as client:
        sign_up(client, "hal@example.com")
        signed_in_id = client.cookies.get("session")
        response = client.post("/sign-out", data={"_csrf_token": csrf(client)}, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/"
        assert not is_signed_in(client)
        assert client.cookies.get("session") != signed_in_id
    with client_for(app_settings) as replay:
        replay.cookies.set("session", signed_in_id)
        assert not is_signed_in(replay)


@pytest.mark.parametrize("token", [None, "forged-token"])
@pytest.mark.parametrize("path", ["/sign-up", "/sign-in", "/sign-out"])
def test_missing_or_forged_csrf_is_refused(app_settings: Settings, token: str | None, path: str) -> None:
    with client_for(app_settings, **{"accept-language": "zh"}) as client:
        client.get("/sign-in")
        data = {"email": "ivy@example.com", "password": PASSWORD}
        if token:
            data["_csrf_token"] = token
        response = client.post(path, data=data, headers={"accept": "text/html"}, follow_redirects=False)
        assert response.status_code == 403
        assert "表单已过期" in response.text
    assert user_count(app_settings) == 0


def test_sign_in_and_sign_up_are_rate_limited(app_settings: Settings) -> None:
    with client_for(app_settings, **{"accept-language": "zh"}) as client:
        for _ in range(10):
            assert sign_in(client, "jo@example.com", password="wrong password").status_code == 401
        limited = sign_in(client, "jo@example.com", password="wrong password")
        assert limited.status_code == 429
        assert "尝试次数过多" in limited.text
        assert sign_up(client, "jo@example.com").status_code == 429
        assert client.get("/sign-in").status_code == 200  # pages still load
    assert user_count(app_settings) == 0


def test_huge_form_is_refused(app_settings: Settings) -> None:
    with client_for(app_settings) as client:
        response = post_form(client, "/sign-up", email="kim@example.com", password="x" * 70_000)
        assert response.status_code == 413
    assert user_count(app_settings) == 0


def test_require_user_and_current_user(app_settings: Settings) -> None:
    """A guarded page sends a signed-out visitor to sign in and back; signed in, the user is loaded once."""
    calls: list[int] = []

    @get("/test-guarded", guards=[require_user])
    async def guarded(
        request: Request[Any, Any, Any], db_session: AsyncSession, current_user: User | None
    ) -> str:
        again = await current(request, db_session)
        assert again is current_user
        calls.append(1)
        return current_user.email if current_user else "nobody"

    @get("/test-user")
    async def needs_user(user: User) -> str:
        return user.email

    current = current_user
    app = create_app(app_settings)
    app.register(guarded)
    app.register(needs_user)
    with TestClient(app, base_url="http://testserver.local") as client:
        response = client.get("/test-guarded?x=1", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/sign-in?next=/test-guarded%3Fx%3D1"
        assert (
            client.get("/test-user", follow_redirects=False).headers["location"] == "/sign-in?next=/test-user"
        )
        sign_up(client, "lee@example.com", next="/test-guarded")
        assert client.get("/test-guarded").text == "lee@example.com"
        assert client.get("/test-user").text == "lee@example.com"
    assert calls == [1]
