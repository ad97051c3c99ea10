"""Money-path fixtures: a sandbox and a shop on real ports, wired to each other."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.checkout import status
from tests.support.shop import Shop, run_shop


@pytest.fixture(autouse=True)
def _fresh_status_caches() -> Iterator[None]:
    status.clear_caches()
    yield
    status.clear_caches()


@pytest.fixture
def shop(migrated_url: str, tmp_path: Path) -> Iterator[Shop]:
    """Sandbox + shop on SQLite and on PostgreSQL."""
    with run_shop(tmp_path, migrated_url) as running:
        yield running


@pytest.fixture
def sqlite_shop(sqlite_settings: object, sqlite_url: str, tmp_path: Path) -> Iterator[Shop]:
    """Sandbox + shop on SQLite only, for tests whose subject is not the database."""
    with run_shop(tmp_path, sqlite_url) as running:
        yield running
