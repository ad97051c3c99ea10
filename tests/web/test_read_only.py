"""Pages that only read never wait for SQLite's write lock (the webhook writer holds it in bursts)."""

from __future__ import annotations

import sqlite3
import time

import httpx
import pytest

from app.settings import Settings
from app.web.factory import create_app
from tests.accounts.support import PASSWORD
from tests.support.servers import free_port, serve_in_thread


def _sign_up(client: httpx.Client) -> None:
    client.get("/sign-up")
    token = client.cookies["csrftoken"]
    answer = client.post(
        "/sign-up", data={"email": "reader@example.com", "password": PASSWORD, "_csrf_token": token}
    )
    assert answer.status_code == 303


@pytest.mark.parametrize("path", ["/account", "/checkout/failed?order=1", "/sign-in", "/healthz"])
def test_read_only_page_answers_while_another_writer_holds_the_lock(
    sqlite_settings: Settings, path: str
) -> None:
    port = free_port()
    with (
        serve_in_thread(create_app(sqlite_settings), port) as url,
        httpx.Client(base_url=url, headers={"Accept": "text/html"}, timeout=5) as client,
    ):
        _sign_up(client)
        client.get(path)  # warm: first connections, templates
        writer = sqlite3.connect(sqlite_settings.database_url.split("///", 1)[1], isolation_level=None)
        try:
            writer.execute("BEGIN IMMEDIATE")  # what a webhook batch holds while it runs
            started = time.monotonic()
            answer = client.get(path)
            took = time.monotonic() - started
        finally:
            writer.execute("ROLLBACK")
            writer.close()
    assert answer.status_code in (200, 404), answer.text[:300]
    assert took < 2, f"{path} waited {took:.1f}s for the write lock"


def test_a_page_that_writes_still_takes_the_lock_first(sqlite_settings: Settings) -> None:
    """The deferred BEGIN is opt-in: a form that writes queues behind the writer, never fails."""
    port = free_port()
    with (
        serve_in_thread(create_app(sqlite_settings), port) as url,
        httpx.Client(base_url=url, headers={"Accept": "text/html"}, timeout=10) as client,
    ):
        _sign_up(client)
        writer = sqlite3.connect(sqlite_settings.database_url.split("///", 1)[1], isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(httpx.ReadTimeout):
                client.post("/sign-out", data={"_csrf_token": client.cookies["csrftoken"]}, timeout=1)
        finally:
            writer.execute("ROLLBACK")
            writer.close()


def _expiry(settings: Settings) -> str:
    with sqlite3.connect(settings.database_url.split("///", 1)[1]) as db:
        rows = db.execute("SELECT expires_at FROM kv_store WHERE namespace = 'sessions'").fetchall()
    assert len(rows) == 1
    return str(rows[0][0])


def test_an_unchanged_session_is_not_rewritten_but_still_slides_daily(
    sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    with (
        serve_in_thread(create_app(sqlite_settings), port) as url,
        httpx.Client(base_url=url, headers={"Accept": "text/html"}, timeout=10) as client,
    ):
        _sign_up(client)
        assert client.get("/account").status_code == 200  # shows (and so removes) the welcome flash
        written = _expiry(sqlite_settings)
        time.sleep(0.01)
        assert client.get("/account").status_code == 200
        assert _expiry(sqlite_settings) == written  # nothing changed: no write
        later = time.time() + 2 * 24 * 3600
        monkeypatch.setattr("app.web.sessions.time.time", lambda: later)
        assert client.get("/account").status_code == 200
        assert _expiry(sqlite_settings) > written  # written two days ago: renewed
