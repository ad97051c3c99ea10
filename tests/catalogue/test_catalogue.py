"""Catalogue queries: ordering, lookup, unit prices, best value, immutability."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from app.catalogue import Catalogue, format_unit_price, parse_catalogue, unit_price
from app.catalogue.loader import file_version

from .factories import make_pack, render


@pytest.fixture
def catalogue() -> Catalogue:
    return parse_catalogue(
        render(
            make_pack(id="starter", asset="quota", units=100, price="9.99", order=10),
            make_pack(id="pro", asset="quota", units=1000, price="49.99", order=20),
            make_pack(id="enterprise", asset="quota", units=10000, price="299.99", order=30),
            make_pack(id="legacy", asset="quota", units=100000, price="500.00", order=5, active=False),
            make_pack(id="c-100", units=100, price="0.99", order=2),
            make_pack(id="c-500", units=500, bonus=50, price="4.99", order=1),
            make_pack(id="c-cny", units=1000, price="68.00", currency="CNY", order=3),
            make_pack(id="c-cny-big", units=2000, price="128.00", currency="CNY", order=4),
        )
    )


def test_packs_for_is_active_and_ordered(catalogue: Catalogue) -> None:
    assert [p.id for p in catalogue.packs_for("quota")] == ["starter", "pro", "enterprise"]
    assert [p.id for p in catalogue.packs_for("coins")] == ["c-500", "c-100", "c-cny", "c-cny-big"]
    assert [p.id for p in catalogue.packs_for("coins", "cny")] == ["c-cny", "c-cny-big"]
    assert catalogue.packs_for("gems") == ()


def test_get_and_get_active(catalogue: Catalogue) -> None:
    assert catalogue.get("nope") is None
    legacy = catalogue.get("legacy")
    assert legacy is not None
    assert not legacy.active
    assert catalogue.get_active("legacy") is None
    assert catalogue.get_active("nope") is None
    pro = catalogue.get_active("pro")
    assert pro is not None
    assert pro.price_minor == 4999


def test_unit_price_includes_bonus(catalogue: Catalogue) -> None:
    starter = catalogue.get("starter")
    c500 = catalogue.get("c-500")
    assert starter is not None
    assert c500 is not None
    assert unit_price(starter) == Decimal("0.0999")
    assert c500.total_units == 550
    assert unit_price(c500) == Decimal("4.99") / 550


def test_unit_price_display(catalogue: Catalogue) -> None:
    starter, quota = catalogue.get("starter"), catalogue.asset("quota")
    assert starter is not None
    assert quota is not None
    assert starter.unit_price_display() == "$0.0999"
    assert format_unit_price(starter, quota) == "$0.0999 per call"
    assert format_unit_price(starter, quota, "zh_Hans_CN") == "US$0.0999/次调用"
    assert quota.unit_label(1) == "call"
    assert quota.unit_label(2) == "calls"
    assert quota.unit_label(2, "zh_Hans_CN") == "次调用"


def test_price_display(catalogue: Catalogue) -> None:
    cny = catalogue.get("c-cny")
    assert cny is not None
    assert cny.price_display("zh_Hans_CN") == "¥68.00"
    assert cny.price_display("en") == "CN¥68.00"


def test_best_value_ignores_inactive_packs(catalogue: Catalogue) -> None:
    # "legacy" is the cheapest per call but retired.
    assert catalogue.best_value("quota") == "enterprise"
    assert catalogue.best_value("gems") is None


def test_best_value_compares_within_one_currency(catalogue: Catalogue) -> None:
    # Default currency is that of the first displayed pack (c-500, USD).
    assert catalogue.best_value("coins") == "c-500"
    assert catalogue.best_value("coins", "CNY") == "c-cny-big"
    assert catalogue.best_value("coins", "EUR") is None


def test_best_value_tie_goes_to_first_shown() -> None:
    catalogue = parse_catalogue(
        render(make_pack(id="b", price="1.00", order=2), make_pack(id="a", price="1.00", order=1))
    )
    assert catalogue.best_value("coins") == "a"


def test_badges() -> None:
    badge = {"en": "Popular", "zh": "热门"}
    catalogue = parse_catalogue(
        render(
            make_pack(id="small", units=100, price="0.99", order=1, badge=badge),
            make_pack(id="big", units=1000, price="4.99", order=2),
            make_pack(id="solo", asset="quota", units=10, price="1.00", order=1),
        )
    )
    assert catalogue.badge_for("small") == "Popular"  # file badge wins
    assert catalogue.badge_for("small", "zh_Hans_CN") == "热门"
    assert catalogue.badge_for("big") == "Best value"  # computed
    assert catalogue.badge_for("big", "zh") == "最超值"
    assert catalogue.badge_for("solo") is None  # nothing to compare with
    assert catalogue.badge_for("missing") is None


def test_version_and_loaded_at() -> None:
    data = render(make_pack())
    catalogue = parse_catalogue(data)
    assert catalogue.version == file_version(data)
    assert len(catalogue.version) == 12
    assert catalogue.loaded_at.tzinfo is not None
    assert parse_catalogue(data + b"\n# comment\n").version != catalogue.version


def test_catalogue_is_frozen(catalogue: Catalogue) -> None:
    pack = catalogue.packs[0]
    assert isinstance(catalogue.packs, tuple)
    assert isinstance(catalogue.assets, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        pack.units = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        catalogue.packs = ()  # type: ignore[misc]
    assert not hasattr(pack, "__dict__")  # slots
    hash(catalogue)  # usable as a cache key
