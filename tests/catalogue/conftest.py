"""Fixtures for catalogue tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from .factories import render


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def write_pricing(tmp_path: Path) -> Callable[..., Path]:
    """Write packs to tmp_path/pricing.toml and return its path."""
    path = tmp_path / "pricing.toml"

    def write(*packs: Mapping[str, Any], raw: bytes | None = None) -> Path:
        path.write_bytes(raw if raw is not None else render(*packs))
        return path

    return write
