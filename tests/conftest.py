"""Shared fixtures: migrated databases (SQLite always, PostgreSQL when it answers), apps, browsers.

With ``CI`` set, a missing PostgreSQL or Chromium fails the tests that need it instead of
skipping them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from app.settings import PROJECT_ROOT, Settings

IN_CI = bool(os.environ.get("CI"))
PG_HOST, PG_PORT = "127.0.0.1", 5432
CHROMIUM = "/usr/bin/chromium"
SHARED_STRIPE = PROJECT_ROOT.parent / "shared" / "stripe"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-gpu",
    "--disable-dev-shm-usage",
]


def missing(reason: str) -> None:
    """Skip on a developer machine, fail in CI: CI must never pass by skipping."""
    if IN_CI:
        pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)")
    pytest.skip(reason)


def postgres_answers() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    """Test settings: own var dir and secrets, the shipped catalogue unless told otherwise."""
    base = Settings(
        env="development",
        database_url=database_url,
        base_url="http://127.0.0.1:8000",
        secret_key=secrets.token_urlsafe(32),
        pricing_path=PROJECT_ROOT / "pricing.toml",
        var_dir=tmp_path / "var",
        stripe_webhook_secrets=("whsec_" + secrets.token_hex(16),),
        reconcile_interval_seconds=0,
        api_key_cache_seconds=0,  # tests revoke keys and expect the next call refused
    )
    return replace(base, **overrides)


def _create_pg_database() -> str:
    """A fresh, empty PostgreSQL database for one test; dropped by the caller."""
    import asyncio

    import asyncpg

    name = "sf_test_" + secrets.token_hex(6)

    async def create() -> None:
        conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="test")
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return name


def _drop_pg_database(name: str) -> None:
    import asyncio

    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="test")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind; PostgreSQL gets a fresh database per test."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        return
    if not postgres_answers():
        missing("PostgreSQL does not answer on 127.0.0.1:5432")
    name = _create_pg_database()
    try:
        yield f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        _drop_pg_database(name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
def migrated_url(database_url: str, tmp_path: Path) -> str:
    """A database of each kind brought to the newest schema by the migrations."""
    from app.db.migrate import upgrade

    upgrade(make_settings(tmp_path, database_url))
    return database_url


@pytest.fixture
def settings(migrated_url: str, tmp_path: Path) -> Settings:
    return make_settings(tmp_path, migrated_url)


@pytest.fixture
def sqlite_settings(sqlite_url: str, tmp_path: Path) -> Settings:
    """SQLite only, migrated: for tests that need not run on both databases."""
    from app.db.migrate import upgrade

    settings = make_settings(tmp_path, sqlite_url)
    upgrade(settings)
    return settings


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        missing("Debian's chromium is not installed (make test installs it)")
    return CHROMIUM


@pytest.fixture
def browser(chromium_path: str) -> Iterator[Any]:
    """A headless Chromium per test (Playwright cannot download its own here).

    Playwright's sync API leaves its event loop marked as running in this thread while it
    is alive, which would break ``asyncio.run`` in later tests; starting and stopping it per
    test keeps every test independent of order. Inside a browser test, run coroutines with
    ``tests.support.aio.run_async``.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


CSP_WATCH = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} at ${document.location.href}`);
});
"""
"""Playwright's init scripts run whatever the page's CSP says, so this sees every violation."""


def csp_violations(tab: Any) -> list[str]:
    """Violations the current page reported so far (``securitypolicyviolation`` events)."""
    return list(tab.evaluate("window.__cspViolations || []"))


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (own cookies) per test; fails the test on any CSP violation.

    Violations are collected on every page the test visits (the console sees those of pages
    already left), so a policy that breaks htmx or the sandbox's hosted pages is caught.
    """
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.add_init_script(CSP_WATCH)
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    console: list[str] = []
    tab.on("console", lambda message: console.append(message.text))
    try:
        yield tab
        violations = [m for m in console if "Content Security Policy" in m]
        assert not violations, f"the pages broke their Content-Security-Policy: {violations}"
    finally:
        context.close()


@pytest.fixture
def shared_stripe() -> Path:
    """Stripe's real schemas and fixtures, beside the repository (never copied into it)."""
    if not (SHARED_STRIPE / "spec3.2023-08-16.json").exists():
        missing(f"Stripe reference data not found at {SHARED_STRIPE}")
    return SHARED_STRIPE


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[Any]:
    """An async session factory on each migrated database (for service-level tests)."""
    from tests.webhooks.factories import session_factory

    async with session_factory(settings) as factory:
        yield factory
