"""Builders for pricing files used across the catalogue tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ASSETS_TOML = """
[assets.coins]
name = { en = "Coins", zh = "金币" }
unit_singular = { en = "coin", zh = "金币" }
unit_plural = { en = "coins", zh = "金币" }

[assets.quota]
name = { en = "API quota", zh = "API 调用额度" }
unit_singular = { en = "call", zh = "次调用" }
unit_plural = { en = "calls", zh = "次调用" }
"""


def _value(value: Any) -> str:
    """Tiny TOML value writer: enough for the pack fields tests use."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def make_pack(**overrides: Any) -> dict[str, Any]:
    """A valid USD coin pack; pass field=None to drop a field."""
    pack: dict[str, Any] = {
        "id": "pro",
        "asset": "coins",
        "units": 100,
        "price": "9.99",
        "currency": "USD",
        "order": 1,
        "name": {"en": "Pro", "zh": "专业版"},
        "description": {"en": "Lots of coins", "zh": "很多金币"},
    }
    pack.update(overrides)
    return {k: v for k, v in pack.items() if v is not None}


def render(*packs: Mapping[str, Any], assets: str = ASSETS_TOML, head: str = "") -> bytes:
    parts = [head, assets]
    for pack in packs:
        parts.append("[[packs]]\n" + "".join(f"{k} = {_value(v)}\n" for k, v in pack.items()))
    return "\n".join(parts).encode()
