"""Password reset, email verification, signed-out buying and the development mailbox over HTTP.

The app's own mail worker writes each message to ``var/mail/`` (no SMTP URL), as in
development; the tests read the links from the files ``/dev/mail`` lists; the page itself is tested on a
real server, since it answers only this machine.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from app.settings import Settings
from app.web.factory import create_app
from tests.accounts.support import PASSWORD, client_for, is_signed_in, post_form, sign_in, sign_up
from tests.support.servers import serve_in_thread
from tests.support.shop import run_sql, wait_for


@pytest.fixture
def mail_settings(sqlite_settings: Settings) -> Settings:
    return replace(sqlite_settings, stripe_api_base="http://127.0.0.1:9", mail_poll_seconds=0.05)


@pytest.fixture
def client(mail_settings: Settings) -> Iterator[TestClient[Any]]:
    with client_for(mail_settings) as client:
        yield client


def _mail_files(settings: Settings) -> list[Path]:
    directory = settings.var_dir / "mail"
    return sorted(directory.glob("*.eml")) if directory.is_dir() else []


def _link(client: TestClient[Any], settings: Settings, to: str, path: str, count: int = 1) -> str:
    """The newest message's ``path`` link to ``to``, read from the files ``/dev/mail`` lists
    (the page itself answers only this machine, and a test client is not one)."""

    def listed() -> list[EmailMessage]:
        parsed = [
            BytesParser(policy=policy.default).parsebytes(p.read_bytes()) for p in _mail_files(settings)
        ]
        return [m for m in reversed(parsed) if isinstance(m, EmailMessage) and str(m["To"]) == to]

    messages = wait_for(lambda: len(found := listed()) >= count and found, timeout=20)
    body = messages[0].get_body(preferencelist=("plain",))
    assert isinstance(body, EmailMessage)
    text = body.get_content()
    found = re.search(rf"{re.escape(settings.base_url)}({re.escape(path)}[A-Za-z0-9_-]{{43}})", text)
    assert found, text
    return found.group(1)


def test_reset_answers_the_same_and_its_link_is_single_use(
    client: TestClient[Any], mail_settings: Settings
) -> None:
    sign_up(client, "ida@example.com")
    old_session = client.cookies["session"]
    answer = post_form(client, "/forgot-password", email="ida@example.com")
    stranger = post_form(client, "/forgot-password", email="nobody@example.com")
    assert answer.status_code == stranger.status_code == 200
    assert answer.text.replace("ida@example.com", "X") == stranger.text.replace("nobody@example.com", "X")
    link = _link(client, mail_settings, "ida@example.com", "/reset-password/")
    assert len(_mail_files(mail_settings)) == 1  # nothing for the unknown address

    assert client.get(link).status_code == 200  # opening it spends nothing
    weak = post_form(client, link, password="password")
    assert weak.status_code == 400
    done = post_form(client, link, password="a fresh lantern 77 orbit")
    assert done.status_code == 303
    assert post_form(client, link, password="another lantern 88 orbit").status_code == 410
    [row] = run_sql(mail_settings, "SELECT session_epoch FROM user_account")
    assert row["session_epoch"] == 1
    assert is_signed_in(client)
    with client_for(mail_settings) as other:
        other.cookies.set("session", old_session)
        assert other.get("/account", follow_redirects=False).status_code == 303
        assert not is_signed_in(other)  # the stale session's row went with it
        assert sign_in(other, "ida@example.com", PASSWORD).status_code == 401
        assert sign_in(other, "ida@example.com", "a fresh lantern 77 orbit").status_code == 303


def test_an_expired_or_made_up_reset_link_changes_nothing(
    client: TestClient[Any], mail_settings: Settings
) -> None:
    sign_up(client, "joe@example.com")
    post_form(client, "/forgot-password", email="joe@example.com")
    link = _link(client, mail_settings, "joe@example.com", "/reset-password/")
    run_sql(mail_settings, "UPDATE account_token SET expires_at = 1")
    assert client.get(link).status_code == 410
    assert post_form(client, link, password="a fresh lantern 77 orbit").status_code == 410
    assert client.get("/reset-password/" + "x" * 43).status_code == 404
    assert client.get("/reset-password/short").status_code == 404
    assert sign_in(client, "joe@example.com", PASSWORD).status_code == 303


def test_reset_requests_are_rate_limited_per_address_asked_for(client: TestClient[Any]) -> None:
    codes = [post_form(client, "/forgot-password", email="kim@example.com").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert post_form(client, "/forgot-password", email="not an email").status_code == 400


def test_signed_out_buying_keeps_the_pack_and_refuses_foreign_input(client: TestClient[Any]) -> None:
    assert post_form(client, "/checkout", pack="no-such-pack").status_code == 404
    chosen = post_form(client, "/checkout", pack="coins-500")
    assert chosen.status_code == 303
    assert chosen.headers["location"] == "/sign-in?pack=coins-500"
    page = client.get("/sign-in?pack=coins-500").text
    assert "To buy Bag of coins for $4.99" in page
    assert 'name="pack" value="coins-500"' in page
    assert "pack=coins-500" in page  # the sign-up link keeps it
    foreign = client.get("/sign-in", params={"pack": "<script>", "next": "//evil.example/"}).text
    assert 'name="pack"' not in foreign
    assert 'name="next" value="/account"' in foreign
    # A made-up pack and an off-site next: the account is made and the visitor stays on the site.
    made = sign_up(client, "lee@example.com", pack="nope", next="https://evil.example/")
    assert made.status_code == 303
    assert made.headers["location"] == "/account"


def test_verification_gates_buying_until_the_link_is_used(mail_settings: Settings) -> None:
    settings = replace(mail_settings, verify_email=True)
    with client_for(settings) as client:
        made = sign_up(client, "max@example.com", pack="coins-100")
        assert made.status_code == 303  # not to Checkout: buying waits for the email
        assert made.headers["location"] == "/verify-email"
        assert "Confirm your email address first" in client.get("/verify-email").text
        assert post_form(client, "/checkout", pack="coins-100").status_code == 403
        link = _link(client, settings, "max@example.com", "/verify-email/")
        assert client.get(link).status_code == 200  # a scanner's GET verifies nothing
        assert post_form(client, "/checkout", pack="coins-100").status_code == 403
        assert post_form(client, link).status_code == 303
        started = post_form(client, "/checkout", pack="coins-100")
        # Past the gate: Stripe is a closed port here, so the order fails the ordinary way.
        assert started.status_code == 303
        assert started.headers["location"].startswith("/checkout/failed")
        assert post_form(client, link).status_code == 410


def test_the_development_mailbox_is_not_mounted_in_production(mail_settings: Settings) -> None:
    production = replace(mail_settings, env="production")
    paths = {route.path for route in create_app(production).routes}
    assert "/dev/mail" not in paths
    assert "/forgot-password" in paths
    assert "/dev/mail" in {route.path for route in create_app(mail_settings).routes}


def test_the_development_mailbox_answers_only_this_machine(mail_settings: Settings) -> None:
    """A shop left in development on a public address must not hand out reset links."""
    with TestClient(create_app(mail_settings)) as stranger:  # its peer is "testclient", not loopback
        assert stranger.get("/dev/mail").status_code == 404
    with serve_in_thread(create_app(mail_settings), ready_path="/healthz") as url:
        assert httpx.get(url + "/dev/mail").status_code == 200
        assert httpx.get(url + "/dev/mail", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200
        for header, value in [
            ("X-Forwarded-For", "203.0.113.9"),
            ("X-Forwarded-For", "127.0.0.1, 203.0.113.9"),
            ("Forwarded", "for=203.0.113.9;proto=https"),
            ("X-Real-IP", "198.51.100.4"),
            ("X-Forwarded-For", "garbage"),
        ]:
            assert httpx.get(url + "/dev/mail", headers={header: value}).status_code == 404, (header, value)


def test_resending_the_confirmation_is_limited_per_account_and_never_waits_on_its_own_lock(
    mail_settings: Settings,
) -> None:
    """Found by the fuzz test: counted inside the handler (SQLite counters, no Redis), the hit
    waited for the write lock the request held and answered 500 after the busy timeout."""
    settings = replace(mail_settings, verify_email=True)
    with client_for(settings) as client:
        assert sign_up(client, "ned@example.com").status_code == 303
        answers = [post_form(client, "/verify-email").status_code for _ in range(4)]
    assert answers == [303, 303, 303, 429]
