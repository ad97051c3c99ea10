"""`storefront pricing check` through click's CliRunner."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.catalogue.cli import pricing_group

from .factories import make_pack

WritePricing = Callable[..., Path]


def test_check_invalid_file_lists_every_problem(write_pricing: WritePricing) -> None:
    path = write_pricing(make_pack(price="49.999"), make_pack(id="cheap", units=0, prise="1", order=2))
    result = CliRunner().invoke(pricing_group, ["check", str(path)])
    assert result.exit_code == 1
    assert "3 problems" in result.output
    assert "pack 'pro': price: 49.999 has 3 decimals but USD allows 2" in result.output
    assert "pack 'cheap': units: must be a positive integer, got 0" in result.output
    assert "pack 'cheap': unknown key 'prise'" in result.output


def test_check_valid_file_prints_table(write_pricing: WritePricing) -> None:
    path = write_pricing(
        make_pack(id="quota-starter", asset="quota", price="9.99", units=100),
        make_pack(id="coins-500", units=500, bonus=50, price="4.99", active=False),
    )
    result = CliRunner().invoke(pricing_group, ["check", str(path)])
    assert result.exit_code == 0, result.output
    for text in ("quota-starter", "coins-500", "500 + 50", "9.99", "USD", "$0.0999 per call", "OK, 2 packs"):
        assert text in result.output
    assert "no" in result.output  # inactive column


def test_check_uses_env_var(write_pricing: WritePricing, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_pricing(make_pack())
    monkeypatch.setenv("STOREFRONT_PRICING", str(path))
    result = CliRunner().invoke(pricing_group, ["check"])
    assert result.exit_code == 0, result.output
    assert str(path) in result.output


def test_check_defaults_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STOREFRONT_PRICING", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(pricing_group, ["check"])
    assert result.exit_code == 1
    assert "cannot read pricing.toml" in result.output


def test_check_shipped_file() -> None:
    root = Path(__file__).resolve().parents[2]
    result = CliRunner().invoke(pricing_group, ["check", str(root / "pricing.toml")])
    assert result.exit_code == 0, result.output
    assert "coins-1000-cny" in result.output
