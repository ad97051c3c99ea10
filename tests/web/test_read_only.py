"""Pages that only read never wait for SQLite's write lock (the webhook writer holds it in bursts)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from app.admin.routes import ADMIN_PATH
from app.db.config import READ_ONLY
from app.db.loop_reads import THREAD_READS
from app.settings import Settings
from app.web.factory import create_app
from app.web.transactions import LONG_READS_OPT, READ_ONLY_OPT, read_only_requests
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


@pytest.mark.parametrize(
    ("opt", "expected"),
    [({READ_ONLY_OPT: True}, (True, False)), ({READ_ONLY_OPT: True, LONG_READS_OPT: True}, (True, True))],
    ids=["short-reads", "long-reads"],
)
def test_long_reads_keep_a_read_only_requests_reads_off_the_loop(
    opt: dict[str, bool], expected: tuple[bool, bool]
) -> None:
    seen: list[tuple[bool, bool]] = []

    async def inner(_scope: Any, _receive: Any, _send: Any) -> None:
        seen.append((READ_ONLY.get(), THREAD_READS.get()))

    scope = {"type": "http", "route_handler": SimpleNamespace(opt=opt)}
    asyncio.run(read_only_requests(inner)(scope, None, None))  # type: ignore[arg-type]
    assert seen == [expected]


def test_every_admin_page_reads_on_aiosqlites_thread(sqlite_settings: Settings) -> None:
    """The console counts, searches and exports whole tables: such reads on the event loop would
    stall every other request (the webhooks' answers too) for as long as SQLite works."""
    app = create_app(sqlite_settings)
    handlers = [h for route in app.routes if route.path.startswith(ADMIN_PATH) for h in route.route_handlers]
    assert len(handlers) > 10
    assert [h for h in handlers if not h.opt.get(LONG_READS_OPT)] == []
