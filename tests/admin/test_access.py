"""Every route under /admin: visitors go to sign-in, non-admins get 403, POSTs need CSRF.

The routes are read from the app's route table, so a route added later is covered here
without editing this file.
"""

from __future__ import annotations

import sqlite3
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from litestar.testing import TestClient

from app.settings import Settings
from app.web.factory import create_app
from tests.admin.support import ADMIN_EMAIL, BUYER_EMAIL, client_as, make_user
from tests.web.route_table import Endpoint, endpoints

WALKED = ("GET", "POST", "PUT", "PATCH", "DELETE")


def admin_endpoints(settings: Settings) -> list[Endpoint]:
    found = [e for e in endpoints(create_app(settings)) if e.path.startswith("/admin") and e.method in WALKED]
    assert any(e.path == "/admin" for e in found), "the dashboard must be among the admin routes"
    return found


def _send(client: TestClient[Any], endpoint: Endpoint, **extra: Any) -> Any:
    return client.request(endpoint.method, endpoint.fill(), follow_redirects=False, **extra)


def _send_as_a_form(client: TestClient[Any], endpoint: Endpoint) -> Any:
    """What the console's own form (or link) sends: a POST carries the CSRF token."""
    token = {"_csrf_token": client.cookies["csrftoken"]} if endpoint.method != "GET" else {}
    return _send(client, endpoint, data=token)


@pytest.fixture
def accounts(sqlite_settings: Settings) -> Settings:
    make_user(sqlite_settings, ADMIN_EMAIL, is_admin=True)
    make_user(sqlite_settings, BUYER_EMAIL)
    return sqlite_settings


def test_an_anonymous_visitor_is_sent_to_sign_in_from_every_admin_route(accounts: Settings) -> None:
    with client_as(accounts, None) as client:
        for endpoint in admin_endpoints(accounts):
            answer = _send_as_a_form(client, endpoint)
            assert answer.status_code == 303, (endpoint, answer.status_code)
            location = urlsplit(answer.headers["location"])
            assert location.path == "/sign-in", endpoint
            if endpoint.method == "GET":
                assert parse_qs(location.query)["next"] == [endpoint.fill()]


def test_a_signed_in_buyer_gets_403_on_every_admin_route(accounts: Settings) -> None:
    with client_as(accounts, BUYER_EMAIL) as client:
        for endpoint in admin_endpoints(accounts):
            answer = _send_as_a_form(client, endpoint)
            assert answer.status_code == 403, (endpoint, answer.status_code)
            assert "You are not allowed to do that." in answer.text


def test_every_admin_change_is_a_post_refused_without_its_csrf_token(accounts: Settings) -> None:
    changes = [e for e in admin_endpoints(accounts) if e.method != "GET"]
    assert any(e.path.endswith("/refund") for e in changes), "the console's own actions must be among them"
    assert all(e.method == "POST" for e in changes), "every admin state change is a POST"
    with client_as(accounts, ADMIN_EMAIL) as client:
        for endpoint in changes:
            answer = _send(client, endpoint, data={"reason": "no token"})
            assert answer.status_code == 403, (endpoint, answer.status_code)
            assert "Your form has expired" in answer.text, endpoint
            wrong = _send(client, endpoint, data={"_csrf_token": "forged", "reason": "wrong token"})
            assert wrong.status_code == 403, (endpoint, wrong.status_code)


def test_an_admin_reaches_every_admin_page(accounts: Settings) -> None:
    with client_as(accounts, ADMIN_EMAIL) as client:
        for endpoint in admin_endpoints(accounts):
            if endpoint.method != "GET" or "{" in endpoint.path:
                continue
            answer = _send(client, endpoint)
            assert answer.status_code == 200, (endpoint, answer.text[:500])
            if answer.headers["content-type"].startswith("text/html"):
                assert 'class="admin-nav"' in answer.text, endpoint


def test_taking_the_admin_flag_away_locks_the_person_out_at_the_next_click(accounts: Settings) -> None:
    with client_as(accounts, ADMIN_EMAIL) as client:
        assert client.get("/admin").status_code == 200
        with sqlite3.connect(accounts.database_url.split("///", 1)[1]) as db:
            db.execute("UPDATE user_account SET is_admin = 0 WHERE email = ?", (ADMIN_EMAIL,))
        assert client.get("/admin").status_code == 403


def test_the_console_speaks_chinese(accounts: Settings) -> None:
    with client_as(accounts, ADMIN_EMAIL) as client:
        page = client.get("/admin", headers={"accept-language": "zh-CN"}).text
        assert "概览" in page
        assert "Webhook 状态" in page
        assert "Dashboard" not in page
