from __future__ import annotations

from dataclasses import replace

import pytest

from app.settings import Settings


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    """Migrated settings (both databases) with Stripe pointed at a closed port: no sandbox needed."""
    return replace(settings, stripe_api_base="http://127.0.0.1:9")
