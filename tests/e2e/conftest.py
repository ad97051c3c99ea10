"""One shop (SQLite) and sandbox per module: browser scenarios share it, each with its own buyer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.shop import Shop, fresh_shop


@pytest.fixture(scope="module")
def e2e_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    with fresh_shop(tmp_path_factory.mktemp("e2e")) as shop:
        yield shop
