"""What the layout and the pricing page say of the prices is true in every tax configuration.

Regression: the footer said "Prices include all fees" even with ``STOREFRONT_AUTOMATIC_TAX=1`` and
packs whose price excludes tax, where Stripe adds tax at Checkout.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from app.settings import PROJECT_ROOT, Settings
from tests.accounts.support import client_for

ALL_FEES = {"en": "Prices include all fees.", "zh": "价格已包含所有费用。"}
TAX_ADDED = {
    "en": "Tax may be added at checkout, depending on your address.",
    "zh": "结账时可能会根据您的地址另加税费。",
}
CARD_NOTE = {"en": "Plus tax at checkout, depending on your address.", "zh": "结账时根据您的地址另加税费。"}


def _pricing(tmp_path: Path, *, inclusive: bool) -> Path:
    """The shipped catalogue (every pack tax-exclusive by default), or all its packs inclusive."""
    text = (PROJECT_ROOT / "pricing.toml").read_text()
    assert "tax_inclusive =" not in text.split("[[packs]]", 1)[1]  # the default is what we test
    if inclusive:
        text = text.replace("[[packs]]\n", "[[packs]]\ntax_inclusive = true\n")
    path = tmp_path / "pricing.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("automatic_tax", "inclusive", "taxed"),
    [(False, False, False), (True, False, True), (True, True, False)],
    ids=["no-automatic-tax", "tax-added", "tax-included"],
)
def test_footer_and_pricing_page_tell_the_truth_about_tax(
    sqlite_settings: Settings, tmp_path: Path, automatic_tax: bool, inclusive: bool, taxed: bool
) -> None:
    settings = replace(
        sqlite_settings, automatic_tax=automatic_tax, pricing_path=_pricing(tmp_path, inclusive=inclusive)
    )
    with client_for(settings, Accept="text/html") as client:
        for lang in ("en", "zh"):
            client.cookies.set("lang", lang)
            for path in ("/", "/sign-in", "/terms"):
                page = client.get(path)
                assert page.status_code == 200, (path, page.status_code)
                footer = page.text.split("<footer", 1)[1]
                said, unsaid = (TAX_ADDED, ALL_FEES) if taxed else (ALL_FEES, TAX_ADDED)
                assert said[lang] in footer, (lang, path)
                assert unsaid[lang] not in page.text, (lang, path)
            pricing = client.get("/").text
            cards = pricing.count('<li class="card')
            assert cards > 1
            # Each pack whose price excludes tax says so under its price; none claims otherwise.
            assert pricing.count(CARD_NOTE[lang]) == (cards if taxed else 0), lang
