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
from tests.support import databases
from tests.support.chromium import ChromiumKeeper

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


@pytest.fixture(scope="session", autouse=True)
def shipped_password_hasher() -> Iterator[Any]:
    """Argon2id at its lowest cost inside the test processes: ~1 ms a hash instead of ~0.2 s of CPU.

    Sign-ups and sign-ins run hundreds of times in the suite, each paying the shipped cost
    (t=3, 64 MiB, 4 lanes) twice or more; it tested nothing but the CPU. The algorithm, the
    encoding and every code path stay the same; the fixture's value is the shipped hasher, whose
    parameters tests/accounts/test_password_hashing.py checks, and shops run as subprocesses
    (tests/e2e/test_crash.py, the CLI tests) keep them.
    """
    from argon2 import PasswordHasher

    from app.accounts import service

    shipped = service._hasher
    service._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    try:
        yield shipped
    finally:
        service._hasher = shipped


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
        money_writer="thread",  # a child process per app would cost a second each; see tests/db
    )
    return replace(base, **overrides)


def _create_pg_database(*, migrated: bool = False) -> str:
    """A fresh PostgreSQL database for one test (empty, or a copy of the migrated template)."""
    return databases.create_pg_database(migrated=migrated)


def _drop_pg_database(name: str) -> None:
    databases.drop_pg_database(name)


@pytest.fixture(scope="session")
def _pg_dropper() -> Iterator[databases.Dropper]:
    """Drops each test's PostgreSQL database in the background (see tests/support/databases.py)."""
    dropper = databases.Dropper()
    try:
        yield dropper
    finally:
        dropper.close()


@pytest.fixture(scope="session", autouse=True)
def _sqlite_template() -> Iterator[None]:
    """Removes this process's migrated SQLite template (made on first use) when the session ends."""
    yield
    databases.remove_sqlite_template()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind; PostgreSQL gets a fresh database per test.

    When the test also asks for ``migrated_url``, the PostgreSQL database is made from the
    migrated template straight away (``migrated_url`` would migrate it next anyway).
    """
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        return
    if not postgres_answers():
        missing("PostgreSQL does not answer on 127.0.0.1:5432")
    dropper: databases.Dropper = request.getfixturevalue("_pg_dropper")
    migrated = "migrated_url" in request.fixturenames
    name = _create_pg_database(migrated=migrated)
    url = f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{name}"
    if migrated:
        _FROM_TEMPLATE.add(url)
    try:
        yield url
    finally:
        _FROM_TEMPLATE.discard(url)
        dropper.submit(name)


_FROM_TEMPLATE: set[str] = set()
"""PostgreSQL URLs ``database_url`` already made from the migrated template."""


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
def migrated_url(database_url: str, tmp_path: Path) -> str:
    """A database of each kind brought to the newest schema by the migrations.

    The migrations run once per process and dialect; each test gets a copy of the result.
    """
    migrate(make_settings(tmp_path, database_url))
    return database_url


@pytest.fixture
def settings(migrated_url: str, tmp_path: Path) -> Settings:
    return make_settings(tmp_path, migrated_url)


@pytest.fixture
def sqlite_settings(sqlite_url: str, tmp_path: Path) -> Settings:
    """SQLite only, migrated: for tests that need not run on both databases."""
    settings = make_settings(tmp_path, sqlite_url)
    migrate(settings)
    return settings


def migrate(settings: Settings) -> None:
    """Bring ``settings``' database to the newest schema as ``app.db.migrate.upgrade`` would.

    A database that does not exist yet (SQLite) or was made from the template (PostgreSQL)
    becomes a copy of this process's migrated template; anything else is migrated in place.
    """
    url = settings.database_url
    if url.startswith("sqlite") and not databases.sqlite_path(url).exists():
        databases.copy_sqlite_migrated(url)
    elif url not in _FROM_TEMPLATE:
        from app.db.migrate import upgrade

        upgrade(settings)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        missing("Debian's chromium is not installed (make test installs it)")
    return CHROMIUM


_CHROMIUM = ChromiumKeeper(CHROMIUM_ARGS)
_NEXT_ITEM: dict[str, pytest.Item | None] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Remember which test runs next on this worker (the browser fixture keeps Chromium for it);
    a test that does not use the shared browser never runs beside a kept one."""
    _NEXT_ITEM["next"] = nextitem
    if not _uses_shared_browser(item):
        _CHROMIUM.stop()


@pytest.fixture
def browser(chromium_path: str) -> Iterator[Any]:
    """A headless Chromium for the test, with no other test's context open (Playwright cannot
    download its own here).

    Playwright's sync API leaves its event loop marked as running in this thread while it
    is alive, which would break ``asyncio.run`` in later tests; so it stays alive only while
    the next test on this worker asks for a browser too (tests/support/chromium.py), and every
    test remains independent of order. Inside a browser test, run coroutines with
    ``tests.support.aio.run_async``.
    """
    instance = _CHROMIUM.get(chromium_path)
    try:
        yield instance
    finally:
        _CHROMIUM.release(keep=_uses_shared_browser(_NEXT_ITEM.get("next")))


def _uses_shared_browser(item: pytest.Item | None) -> bool:
    """Does ``item`` ask for this file's ``browser`` fixture (not a module's own override)?"""
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.get("browser") if info is not None else None
    if not defs:
        return False
    func = defs[-1].func
    return bool(func.__module__ == __name__ and func.__name__ == "browser")


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
