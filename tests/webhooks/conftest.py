"""A shop served over real HTTP for the webhook tests (each module says its ``app_settings``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.settings import Settings
from app.web.factory import create_app
from tests.support.servers import serve_in_thread


@pytest.fixture
def base_url(app_settings: Settings) -> Iterator[str]:
    with serve_in_thread(create_app(app_settings)) as url:
        yield url
