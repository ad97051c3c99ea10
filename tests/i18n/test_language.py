"""The language switcher and negotiation: cookie, then the account's language, then Accept-Language."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.settings import Settings
from tests.accounts.support import client_for, csrf, sign_in, sign_up, users


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    return replace(settings, stripe_api_base="http://127.0.0.1:9")


def test_accept_language_zh_gets_chinese(app_settings: Settings) -> None:
    with client_for(app_settings, **{"accept-language": "zh-CN,zh;q=0.9,en;q=0.8"}) as client:
        page = client.get("/sign-in")
        assert page.status_code == 200
        assert '<html lang="zh-Hans">' in page.text
        assert "登录" in page.text
        assert "电子邮箱" in page.text
    with client_for(app_settings, **{"accept-language": "en-GB"}) as client:
        assert "Email" in client.get("/sign-in").text


def test_switcher_remembers_the_choice_and_returns(app_settings: Settings) -> None:
    with client_for(app_settings, **{"accept-language": "en"}) as client:
        page = client.get("/sign-up?next=/x")
        assert 'href="/language/zh?next=/sign-up%3Fnext%3D/x"' in page.text
        response = client.get("/language/zh?next=/sign-up%3Fnext%3D/x", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/sign-up?next=/x"
        assert "lang=zh" in response.headers["set-cookie"]
        assert "Max-Age=31536000" in response.headers["set-cookie"]
        assert "创建您的账户" in client.get("/sign-up").text
        assert "创建您的账户" in client.get("/sign-up").text  # still remembered
        client.get("/language/en?next=/", follow_redirects=False)
        assert "Create your account" in client.get("/sign-up").text


@pytest.mark.parametrize("evil", ["//evil.com", "https://evil.com", "/\\evil.com"])
def test_switcher_only_returns_to_local_pages(app_settings: Settings, evil: str) -> None:
    with client_for(app_settings) as client:
        response = client.get("/language/zh", params={"next": evil}, follow_redirects=False)
        assert response.headers["location"] == "/"


def test_unknown_language_is_404(app_settings: Settings) -> None:
    with client_for(app_settings) as client:
        response = client.get("/language/fr?next=/", headers={"accept": "text/html"}, follow_redirects=False)
        assert response.status_code == 404
        assert "lang=" not in response.headers.get("set-cookie", "")


def test_signed_in_choice_is_saved_and_follows_the_account(app_settings: Settings) -> None:
    with client_for(app_settings, **{"accept-language": "en"}) as client:
        sign_up(client, "mia@example.com")
        client.get("/language/zh?next=/", follow_redirects=False)
    [user] = users(app_settings)
    assert user.locale == "zh"
    # A new browser that prefers English: after sign-in the account's language wins.
    with client_for(app_settings, **{"accept-language": "en"}) as other:
        response = sign_in(other, "mia@example.com")
        assert response.status_code == 303
        assert "lang=zh" in ",".join(response.headers.get_list("set-cookie"))
        assert "退出登录" in other.get("/sign-in").text
        # The browser's own switcher choice still wins over the account's.
        other.get("/language/en?next=/", follow_redirects=False)
        assert "Sign out" in other.get("/sign-in").text
        other.post("/sign-out", data={"_csrf_token": csrf(other)})
    [user] = users(app_settings)
    assert user.locale == "en"
