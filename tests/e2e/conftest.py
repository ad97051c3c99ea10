"""One shop (SQLite) and sandbox per module: browser scenarios share it, each with its own buyer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.checkout import status
from tests.conftest import make_settings
from tests.support.shop import Shop, run_shop


@pytest.fixture(scope="module")
def e2e_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    from app.db.migrate import upgrade

    tmp = tmp_path_factory.mktemp("e2e")
    url = f"sqlite+aiosqlite:///{tmp / 'shop.db'}"
    upgrade(make_settings(tmp, url))
    status.clear_caches()
    with run_shop(tmp, url) as shop:
        yield shop
