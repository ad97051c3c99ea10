"""Every validation rule, each with a failing example naming the pack and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.catalogue.loader import CatalogueError, load_catalogue, parse_catalogue, validate_catalogue

from .factories import ASSETS_TOML, make_pack, render


def problems_for(*packs: dict[str, Any], assets: str = ASSETS_TOML, head: str = "") -> list[str]:
    return validate_catalogue(render(*packs, assets=assets, head=head))


def test_valid_minimal_pack_loads() -> None:
    catalogue = parse_catalogue(render(make_pack()))
    pack = catalogue.get("pro")
    assert pack is not None
    assert pack.price_minor == 999
    assert pack.bonus == 0
    assert pack.active is True
    assert pack.badge is None
    assert pack.stripe_price is None


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"asset": "coin"}, "pack 'pro': asset: unknown asset 'coin' (did you mean 'coins'?)"),
        ({"units": 0}, "pack 'pro': units: must be a positive integer, got 0"),
        ({"units": -5}, "pack 'pro': units: must be a positive integer, got -5"),
        ({"units": "100"}, "pack 'pro': units: expected an integer, got string"),
        ({"units": True}, "pack 'pro': units: expected an integer, got boolean"),
        ({"units": 1.5}, "pack 'pro': units: expected an integer, got float"),
        ({"bonus": -1}, "pack 'pro': bonus: must be zero or more, got -1"),
        ({"expires_after_days": 0}, "pack 'pro': expires_after_days: must be between 1 and 36500, got 0"),
        ({"expires_after_days": 36501}, "pack 'pro': expires_after_days: must be between 1 and 36500"),
        ({"expires_after_days": "30"}, "pack 'pro': expires_after_days: expected an integer, got string"),
        ({"currency": "XYZ"}, "pack 'pro': currency: unknown currency 'XYZ'"),
        ({"currency": 840}, "pack 'pro': currency: expected an ISO 4217 code string, got integer"),
        ({"price": "49.999"}, "pack 'pro': price: 49.999 has 3 decimals but USD allows 2"),
        ({"price": "500.5", "currency": "JPY"}, "pack 'pro': price: 500.5 has 1 decimals but JPY allows 0"),
        ({"price": "1.2345", "currency": "KWD"}, "pack 'pro': price: 1.2345 has 4 decimals but KWD allows 3"),
        ({"price": 49.99}, "pack 'pro': price: 49.99 is a TOML float"),
        ({"price": 500}, "pack 'pro': price: expected a quoted decimal string"),
        ({"price": "9,99"}, "pack 'pro': price: '9,99' is not a decimal amount"),
        ({"price": "1e3"}, "pack 'pro': price: '1e3' is not a decimal amount"),
        ({"price": "0"}, "pack 'pro': price: must be greater than zero"),
        ({"price": "-1.00"}, "pack 'pro': price: must be greater than zero"),
        ({"price": "0.49"}, "pack 'pro': price: 0.49 USD is below Stripe's minimum charge of $0.50"),
        ({"price": "0.29", "currency": "GBP"}, "pack 'pro': price: 0.29 GBP is below Stripe's minimum"),
        ({"price": "49", "currency": "JPY"}, "pack 'pro': price: 49 JPY is below Stripe's minimum"),
        ({"price": "3.99", "currency": "CNY"}, "pack 'pro': price: 3.99 CNY is below Stripe's minimum"),
        ({"price": "0.199", "currency": "KWD"}, "pack 'pro': price: 0.199 KWD is below Stripe's minimum"),
        (
            {"price": "1000000.00"},
            "pack 'pro': price: 1000000.00 USD is above Stripe's maximum of $999,999.99",
        ),
        (
            {"price": "100000000", "currency": "JPY"},
            "pack 'pro': price: 100000000 JPY is above Stripe's maximum",
        ),
        ({"prise": "9.99"}, "pack 'pro': unknown key 'prise' (did you mean 'price'?)"),
        ({"name": "Pro"}, "pack 'pro': name: expected a table like"),
        ({"name": {"en": "Pro"}}, "pack 'pro': name: missing translation 'zh'"),
        ({"description": {"zh": "很多"}}, "pack 'pro': description: missing translation 'en'"),
        ({"name": {"en": "Pro", "zh": "  "}}, "pack 'pro': name.zh: must not be empty"),
        ({"name": {"en": "Pro", "zh": 1}}, "pack 'pro': name.zh: expected a string, got integer"),
        ({"name": {"en": "Pro", "zh": "专业", "fr": "Pro"}}, "pack 'pro': name: unknown language 'fr'"),
        ({"badge": {"en": "Hot"}}, "pack 'pro': badge: missing translation 'zh'"),
        ({"active": "yes"}, "pack 'pro': active: expected true or false, got string"),
        ({"promotion_codes": 1}, "pack 'pro': promotion_codes: expected true or false, got integer"),
        ({"tax_inclusive": "true"}, "pack 'pro': tax_inclusive: expected true or false, got string"),
        ({"order": "1"}, "pack 'pro': order: expected an integer, got string"),
        ({"stripe_price": "prod_123"}, "pack 'pro': stripe_price: 'prod_123' is not a Stripe Price id"),
        ({"stripe_price": "price_"}, "pack 'pro': stripe_price: 'price_' is not a Stripe Price id"),
        ({"stripe_price": 5}, "pack 'pro': stripe_price: 5 is not a Stripe Price id"),
        ({"id": "Pro Pack"}, "pack 'Pro Pack': id: 'Pro Pack' is not a valid id"),
        ({"id": "pro--x"}, "pack 'pro--x': id: 'pro--x' is not a valid id"),
        ({"id": "x" * 65}, "is longer than 64 characters"),
        ({"id": 7}, "pack #1: id: expected a string, got integer"),
    ],
)
def test_pack_rule(overrides: dict[str, Any], expected: str) -> None:
    problems = problems_for(make_pack(**overrides))
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    "field", ["id", "asset", "units", "price", "currency", "name", "description", "order"]
)
def test_missing_required_field(field: str) -> None:
    problems = problems_for(make_pack(**{field: None}))
    ctx = "pack #1" if field == "id" else "pack 'pro'"
    assert f"{ctx}: {field}: missing required field" in problems


def test_duplicate_ids() -> None:
    problems = problems_for(make_pack(), make_pack(order=2))
    assert "pack 'pro': id: duplicate id, also used by pack #1" in problems


def test_duplicate_stripe_price() -> None:
    problems = problems_for(make_pack(stripe_price="price_1"), make_pack(id="max", stripe_price="price_1"))
    assert "pack 'max': stripe_price: 'price_1' is also used by pack 'pro'" in problems


def test_optional_fields_parse() -> None:
    pack = make_pack(
        bonus=20, active=False, badge={"en": "Hot", "zh": "热门"}, stripe_price="price_1AbC", currency="usd"
    )
    parsed = parse_catalogue(render(pack)).get("pro")
    assert parsed is not None
    assert (parsed.bonus, parsed.active, parsed.stripe_price, parsed.currency) == (
        20,
        False,
        "price_1AbC",
        "USD",
    )
    assert parsed.badge is not None
    assert parsed.badge.get("zh_Hans_CN") == "热门"


def test_every_problem_is_reported_at_once() -> None:
    problems = problems_for(
        make_pack(price="49.999"),
        make_pack(id="cheap", price="0.10", units=0, prise="1"),
        make_pack(id="cheap", asset="gems", currency="ABC", name={"en": "x"}),
    )
    expected = [
        "pack 'pro': price: 49.999 has 3 decimals but USD allows 2",
        "pack 'cheap': price: 0.10 USD is below Stripe's minimum",
        "pack 'cheap': units: must be a positive integer",
        "pack 'cheap': unknown key 'prise'",
        "pack 'cheap': id: duplicate id",
        "pack 'cheap': asset: unknown asset 'gems'",
        "pack 'cheap': currency: unknown currency 'ABC'",
        "pack 'cheap': name: missing translation 'zh'",
    ]
    for line in expected:
        assert any(line in p for p in problems), (line, problems)
    assert len(problems) == len(expected)


def test_error_message_lists_problems() -> None:
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(render(make_pack(units=0), make_pack(id="b", price=1.5)), source="x.toml")
    assert len(info.value.problems) == 2
    text = str(info.value)
    assert text.startswith("x.toml: 2 problems:")
    assert "pack 'pro': units" in text
    assert "pack 'b': price" in text


# --- assets and file-level structure ------------------------------------------


def test_asset_missing_translation_and_field() -> None:
    assets = """
[assets.coins]
name = { en = "Coins" }
unit_singular = { en = "coin", zh = "金币" }
units_plural = { en = "coins", zh = "金币" }
"""
    problems = problems_for(make_pack(), assets=assets)
    assert "asset 'coins': name: missing translation 'zh'" in problems
    assert "asset 'coins': unit_plural: missing required field" in problems
    assert any(p.startswith("asset 'coins': unknown key 'units_plural'") for p in problems)
    assert not any(p.startswith("pack 'pro'") for p in problems)  # no cascade from the broken asset


def test_asset_bad_id() -> None:
    assets = ASSETS_TOML + '\n[assets.Gems]\nname = { en = "G", zh = "G" }\n'
    assets += 'unit_singular = { en = "g", zh = "g" }\nunit_plural = { en = "g", zh = "g" }\n'
    problems = problems_for(make_pack(), assets=assets)
    assert any(p.startswith("asset 'Gems': id: 'Gems' is not a valid id") for p in problems)


def test_unused_asset_is_fine() -> None:
    catalogue = parse_catalogue(render(make_pack()))  # "quota" has no packs
    assert catalogue.asset("quota") is not None
    assert catalogue.packs_for("quota") == ()


def test_unknown_top_level_key() -> None:
    problems = problems_for(make_pack(), head='currency = "USD"')
    assert any(p.startswith("file: unknown key 'currency'") for p in problems)


def test_missing_sections() -> None:
    assert "file: packs: missing; declare each pack as a [[packs]] table" in validate_catalogue(
        ASSETS_TOML.encode()
    )
    problems = validate_catalogue(render(make_pack(), assets=""))
    assert "file: assets: missing required table; declare assets as [assets.<id>]" in problems
    assert any(p.startswith("pack 'pro': asset: unknown asset 'coins'") for p in problems)


def test_invalid_toml_is_one_clear_problem() -> None:
    problems = validate_catalogue(b"[[packs]\nid = 1")
    assert len(problems) == 1
    assert problems[0].startswith("file: invalid TOML:")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="cannot read"):
        load_catalogue(tmp_path / "nope.toml")


def test_shipped_pricing_toml_is_valid() -> None:
    root = Path(__file__).resolve().parents[2]
    catalogue = load_catalogue(root / "pricing.toml")
    assert {a.id for a in catalogue.assets} == {"coins", "quota"}
    premium = [
        p
        for p in catalogue.packs
        if (p.units, p.bonus, p.price_minor, p.currency) == (1000, 200, 9999, "USD")
    ]
    assert len(premium) == 1, "issue #2 requires 1,000 coins + 200 bonus for 99.99 USD"
    quota = {(p.units, str(p.price), p.currency) for p in catalogue.packs_for("quota")}
    assert quota >= {(100, "9.99", "USD"), (1000, "49.99", "USD"), (10000, "299.99", "USD")}
    assert any(p.currency == "CNY" for p in catalogue.packs)


def test_expiry_and_low_balance_parse() -> None:
    assets = ASSETS_TOML.replace("[assets.quota]\n", "[assets.quota]\nlow_balance = 50\n")
    catalogue = parse_catalogue(render(make_pack(expires_after_days=30), assets=assets))
    pack = catalogue.get("pro")
    assert pack is not None
    assert pack.expires_after_days == 30
    quota = catalogue.asset("quota")
    assert quota is not None
    assert quota.low_balance == 50
    coins = catalogue.asset("coins")
    assert coins is not None
    assert coins.low_balance is None


@pytest.mark.parametrize("value", ["0", "-3", '"many"', "true"])
def test_low_balance_must_be_a_positive_integer(value: str) -> None:
    assets = ASSETS_TOML.replace("[assets.quota]\n", f"[assets.quota]\nlow_balance = {value}\n")
    problems = problems_for(make_pack(), assets=assets)
    assert any(p.startswith("asset 'quota': low_balance:") for p in problems), problems


def test_promotion_codes_and_tax_inclusive_default_off_and_parse() -> None:
    plain = parse_catalogue(render(make_pack())).get("pro")
    assert plain is not None
    assert (plain.promotion_codes, plain.tax_inclusive) == (False, False)
    both = parse_catalogue(render(make_pack(promotion_codes=True, tax_inclusive=True))).get("pro")
    assert both is not None
    assert (both.promotion_codes, both.tax_inclusive) == (True, True)
