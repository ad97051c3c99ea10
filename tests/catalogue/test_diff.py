"""The per-pack diff of two catalogues, and ``storefront pricing diff``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from app.catalogue.cli import pricing_group
from app.catalogue.diff import Change, FieldChange, compare_with_file, diff_catalogues
from app.catalogue.loader import parse_catalogue

from .factories import make_pack, render

WritePricing = Callable[..., Path]

LIVE = (
    make_pack(id="small", units=100, price="1.99"),
    make_pack(id="big", units=1000, bonus=100, price="9.99", order=2),
    make_pack(id="old", units=50, price="0.99", order=3),
)
DISK = (
    make_pack(id="small", units=100, price="1.99", name={"en": "Renamed", "zh": "改名"}),
    make_pack(id="big", units=1200, bonus=0, price="11.99", order=2, active=False),
    make_pack(id="new", asset="quota", units=10, price="0.50", order=4),
)


def test_added_removed_and_changed_fields_per_pack() -> None:
    changes = diff_catalogues(parse_catalogue(render(*LIVE)), parse_catalogue(render(*DISK)))
    assert [(c.pack_id, c.change) for c in changes] == [
        ("big", Change.CHANGED),
        ("old", Change.REMOVED),
        ("new", Change.ADDED),
    ]
    assert changes[0].fields == (
        FieldChange("price", "9.99 USD", "11.99 USD"),
        FieldChange("units", "1000", "1200"),
        FieldChange("bonus", "100", "0"),
        FieldChange("active", "yes", "no"),
    )
    same = parse_catalogue(render(*LIVE))
    assert diff_catalogues(same, parse_catalogue(render(*LIVE))) == []


def test_compare_with_file_reports_same_changed_and_broken(write_pricing: WritePricing) -> None:
    live = parse_catalogue(render(*LIVE))
    assert compare_with_file(live, write_pricing(*LIVE)).same
    assert len(compare_with_file(live, write_pricing(*DISK)).changes) == 3
    broken = compare_with_file(live, write_pricing(make_pack(units=0)))
    assert broken.problems
    assert not broken.changes
    assert compare_with_file(live, Path("/nonexistent/pricing.toml")).version is None


def test_cli_prints_the_diff_and_exits_by_it(write_pricing: WritePricing, tmp_path: Path) -> None:
    live = tmp_path / "live.toml"
    live.write_bytes(render(*LIVE))
    changed = CliRunner().invoke(pricing_group, ["diff", str(write_pricing(*DISK)), "--live", str(live)])
    assert changed.exit_code == 1, changed.output
    expected = ("changed  big", "price: 9.99 USD -> 11.99 USD", "active: yes -> no", "removed  old")
    assert "added    new" in changed.output
    for text in expected:
        assert text in changed.output
    assert "3 packs differ" in changed.output
    same = CliRunner().invoke(pricing_group, ["diff", str(live), "--live", str(live)])
    assert same.exit_code == 0
    assert "no differences" in same.output
    broken = CliRunner().invoke(
        pricing_group, ["diff", str(write_pricing(make_pack(units=0))), "--live", str(live)]
    )
    assert broken.exit_code == 2
    assert "units: must be a positive integer" in broken.output
