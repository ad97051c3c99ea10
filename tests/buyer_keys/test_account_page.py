"""The account page's "API keys" section over HTTP: without JavaScript, with htmx, in both languages."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from app.buyer_keys import web
from app.settings import Settings
from tests.accounts.support import client_for, csrf, post_form, sign_up, users

HTMX = {"HX-Request": "true"}
LAST_DAY = "The last day must be a date, today or later."
SECRET = re.compile(r'id="new-key-secret"[^>]*value="(sk_[^"]+)"')


@pytest.fixture
def client(app_settings: Settings) -> Iterator[TestClient[Any]]:
    """A signed-in buyer's client (English)."""
    with client_for(app_settings, **{"accept-language": "en"}) as client:
        assert sign_up(client, "keys@example.com").status_code == 303
        yield client


def _key_ids(page: str) -> list[str]:
    return re.findall(r'<tr data-key="(\d+)"', page)


def test_make_a_key_without_javascript_and_see_it_once(client: TestClient[Any]) -> None:
    page = client.get("/account").text
    assert 'id="api-keys"' in page
    assert '<option value="quota"' in page
    assert '<option value="coins"' in page
    assert "No API keys yet." in page
    made = post_form(client, "/account/keys", name="ci bot", asset="quota", cap="500", cap_period="day")
    assert made.status_code == 303
    assert made.headers["location"] == "/account#api-keys"
    answer = client.get("/account")
    assert answer.headers["cache-control"] == "no-store"
    first = answer.text
    shown = SECRET.search(first)
    assert shown is not None
    secret = shown.group(1)
    assert secret.startswith("sk_quota_")
    assert "shown only this once" in first
    assert "ci bot" in first
    assert secret[:15] in first  # its prefix in the list
    assert "500 per day" in first
    again = client.get("/account").text
    assert SECRET.search(again) is None
    assert secret not in again
    assert len(_key_ids(again)) == 1


def test_make_and_revoke_a_key_with_htmx(client: TestClient[Any]) -> None:
    token = csrf(client, "/account")
    fragment = client.post(
        "/account/keys",
        data={"_csrf_token": token, "name": "htmx app", "asset": "coins", "cap": "", "expires": "2099-01-31"},
        headers=HTMX,
    )
    assert fragment.status_code == 200
    assert fragment.headers["cache-control"] == "no-store"
    assert "<html" not in fragment.text
    assert fragment.text.lstrip().startswith('<section id="api-keys"')
    shown = SECRET.search(fragment.text)
    assert shown is not None
    assert shown.group(1).startswith("sk_coins_")
    assert "Jan 31, 2099" in fragment.text
    assert SECRET.search(client.get("/account").text) is None  # never in the session
    [key_id] = _key_ids(fragment.text)
    revoked = client.post(f"/account/keys/{key_id}/revoke", data={"_csrf_token": token}, headers=HTMX)
    assert revoked.status_code == 200
    assert 'data-status="revoked"' in revoked.text
    assert "Revoked" in revoked.text
    assert f"/account/keys/{key_id}/revoke" not in revoked.text  # no button on a revoked key


def test_revoke_without_javascript(client: TestClient[Any]) -> None:
    post_form(client, "/account/keys", name="old", asset="quota")
    [key_id] = _key_ids(client.get("/account").text)
    answer = post_form(client, f"/account/keys/{key_id}/revoke")
    assert answer.status_code == 303
    page = client.get("/account").text
    assert "The key was revoked" in page
    assert 'data-status="revoked"' in page


def test_someone_elses_key_is_404(app_settings: Settings) -> None:
    with client_for(app_settings, **{"accept-language": "en"}) as owner:
        sign_up(owner, "owner@example.com")
        post_form(owner, "/account/keys", name="mine", asset="quota")
        [key_id] = _key_ids(owner.get("/account").text)
    with client_for(app_settings, **{"accept-language": "en"}) as stranger:
        sign_up(stranger, "stranger@example.com")
        assert post_form(stranger, f"/account/keys/{key_id}/revoke").status_code == 404
        assert post_form(stranger, "/account/keys/999999/revoke").status_code == 404
        assert post_form(stranger, "/account/keys/99999999999999999999/revoke").status_code in (400, 404)
    with client_for(app_settings, **{"accept-language": "en"}) as owner_again:
        post_form(owner_again, "/sign-in", email="owner@example.com", password="correct horse battery")
        assert 'data-status="active"' in owner_again.get("/account").text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "", "asset": "quota"}, "Give the key a name"),
        ({"name": "x" * 101, "asset": "quota"}, "Give the key a name"),
        ({"name": "a", "asset": "gold"}, "Choose one of the listed balances."),
        ({"name": "a", "asset": "quota", "cap": "0"}, "A cap is a whole number"),
        ({"name": "a", "asset": "quota", "cap": "1.5"}, "A cap is a whole number"),
        ({"name": "a", "asset": "quota", "cap": "-3"}, "A cap is a whole number"),
        ({"name": "a", "asset": "quota", "cap": "99999999999999999999"}, "A cap is a whole number"),
        ({"name": "a", "asset": "quota", "cap": "5", "cap_period": "week"}, "A cap is a whole number"),
        ({"name": "a", "asset": "quota", "expires": "2000-01-01"}, LAST_DAY),
        ({"name": "a", "asset": "quota", "expires": "soon"}, LAST_DAY),
    ],
)
def test_bad_input_is_400_and_makes_nothing(
    client: TestClient[Any], fields: dict[str, str], message: str
) -> None:
    answer = post_form(client, "/account/keys", **fields)
    assert answer.status_code == 400
    assert message in answer.text
    assert 'role="alert"' in answer.text
    assert f'value="{fields["name"]}"' in answer.text  # filled in again
    token = csrf(client, "/account")
    fragment = client.post("/account/keys", data={"_csrf_token": token, **fields}, headers=HTMX)
    assert fragment.status_code == 200  # htmx swaps only 2xx: the fragment shows the error in place
    assert message in fragment.text
    assert _key_ids(client.get("/account").text) == []


def test_forms_need_csrf_and_a_signed_in_buyer(app_settings: Settings) -> None:
    with client_for(app_settings) as client:
        csrf(client)
        answer = client.post("/account/keys", data={"name": "x", "asset": "quota"}, follow_redirects=False)
        assert answer.status_code == 403
        signed_out = post_form(client, "/account/keys", name="x", asset="quota")
        assert signed_out.status_code == 303
        assert signed_out.headers["location"].startswith("/sign-in")
    assert users(app_settings) == []


def test_the_section_speaks_chinese(app_settings: Settings) -> None:
    with client_for(app_settings, **{"accept-language": "zh-CN"}) as client:
        sign_up(client, "zh@example.com")
        post_form(client, "/account/keys", name="机器人", asset="quota", cap="20", cap_period="month")
        page = client.get("/account").text
    assert "API 密钥" in page
    assert "创建密钥" in page
    assert "每月 20" in page
    assert "Create key" not in page


def test_a_new_key_not_shown_within_ten_minutes_is_dropped(
    client: TestClient[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert post_form(client, "/account/keys", name="late", asset="quota").status_code == 303
    later = time.time() + 601
    monkeypatch.setattr(web.time, "time", lambda: later)
    page = client.get("/account").text
    assert SECRET.search(page) is None
    assert len(_key_ids(page)) == 1
