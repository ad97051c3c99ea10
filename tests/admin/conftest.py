"""Fixtures of the console's customers, events, catalogue and ledger pages."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.catalogue.reload import CatalogueHolder
from app.settings import Settings
from tests.admin.console_data import Seeded, seed
from tests.admin.support import ADMIN_EMAIL, make_user


@pytest.fixture
def console(settings: Settings) -> Settings:
    """No deliverer in the app: the tests look at deliveries as they leave them."""
    return replace(settings, host_webhooks_deliver=False)


@pytest.fixture
def seeded(console: Settings) -> Seeded:
    make_user(console, ADMIN_EMAIL, is_admin=True)
    return seed(console)


@pytest.fixture
def frozen_catalogue(monkeypatch: pytest.MonkeyPatch) -> None:
    """No watcher: a file edited on disk stays different from what is live while the test looks."""

    async def no_watcher(self: CatalogueHolder) -> None:
        return None

    monkeypatch.setattr(CatalogueHolder, "start", no_watcher)
