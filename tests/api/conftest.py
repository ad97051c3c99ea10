from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from litestar.testing import TestClient

from app.settings import Settings
from tests.api.support import api_client, make_key


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    """Migrated settings on both databases; Stripe pointed at a closed port (no sandbox needed)."""
    return replace(settings, stripe_api_base="http://127.0.0.1:9")


@pytest.fixture
def sqlite_api_settings(sqlite_settings: Settings) -> Settings:
    return replace(sqlite_settings, stripe_api_base="http://127.0.0.1:9")


@pytest.fixture
def key(api_settings: Settings) -> str:
    """A key with every scope."""
    return make_key(api_settings)


@pytest.fixture
def client(api_settings: Settings, key: str) -> Iterator[TestClient[Any]]:
    with api_client(api_settings) as c:
        c.headers.update({"Authorization": f"Bearer {key}"})
        yield c
