"""What the pricing page shows, computed from the live catalogue for one language.

Kept apart from the template so the page and its tests read the same numbers:
prices and unit prices come from the catalogue's money helpers (Babel, exact
Decimals), never from the request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from babel.numbers import format_decimal

from app.i18n import babel_name
from app.i18n import gettext as _

from .model import Catalogue, Pack

__all__ = ["PackCard", "Section", "price_statement", "pricing_sections", "tax_added"]


@dataclass(frozen=True, slots=True)
class PackCard:
    """One pack as its card shows it; every string is already in the page's language."""

    id: str
    name: str
    description: str
    units: str  # "2,500 coins"
    bonus: str | None  # "+500 bonus"
    price: str  # "$19.99" / "US$19.99"
    unit_price: str  # "$0.00666 per coin"
    badge: str | None
    best: bool  # the computed best value of its asset and currency
    tax_added: bool  # Checkout may add tax to this price (automatic tax on, price excludes it)


@dataclass(frozen=True, slots=True)
class Section:
    """An asset and its active packs, in display order."""

    id: str
    name: str
    cards: tuple[PackCard, ...]


def tax_added(automatic_tax: bool, packs: Iterable[Pack]) -> bool:
    """Whether Checkout may add tax to one of these prices: Stripe's automatic tax is asked
    for (``STOREFRONT_AUTOMATIC_TAX``) and the pack's price does not include it."""
    return automatic_tax and any(not pack.tax_inclusive for pack in packs)


def price_statement(automatic_tax: bool) -> Callable[[Any], str]:
    """The layout's global ``price_statement(request)``: what the footer may say of the prices,
    true of the live catalogue (it changes on reload, the setting only at start-up)."""

    def statement(request: Any) -> str:
        holder = request.app.state.get("catalogue") if request is not None else None
        if holder is None:  # no live catalogue: say only what is true whatever the packs
            taxed = automatic_tax
        else:
            taxed = tax_added(automatic_tax, (p for p in holder.catalogue.packs if p.active))
        if taxed:
            return _(
                "Payments are processed by Stripe. Tax may be added at checkout, depending on your address."
            )
        return _("Payments are processed by Stripe. Prices include all fees.")

    return statement


def _card(catalogue: Catalogue, pack: Pack, code: str, automatic_tax: bool) -> PackCard:
    locale = babel_name(code)
    asset = catalogue.asset(pack.asset)
    assert asset is not None  # the loader guarantees every pack's asset exists
    units = _("%(count)s %(unit)s") % {
        "count": format_decimal(pack.units, locale=locale),
        "unit": asset.unit_label(pack.units, locale),
    }
    bonus = (
        _("+%(count)s bonus") % {"count": format_decimal(pack.bonus, locale=locale)} if pack.bonus else None
    )
    unit_price = _("%(price)s per %(unit)s") % {
        "price": pack.unit_price_display(locale),
        "unit": asset.unit_singular.get(locale),
    }
    return PackCard(
        id=pack.id,
        name=pack.name.get(locale),
        description=pack.description.get(locale),
        units=units,
        bonus=bonus,
        price=pack.price_display(locale),
        unit_price=unit_price,
        badge=catalogue.badge_for(pack.id, locale),
        best=catalogue.best_value(pack.asset, pack.currency) == pack.id
        and len(catalogue.packs_for(pack.asset, pack.currency)) > 1,
        tax_added=tax_added(automatic_tax, [pack]),
    )


def pricing_sections(catalogue: Catalogue, code: str, *, automatic_tax: bool = False) -> tuple[Section, ...]:
    """Assets in file order with their active packs; assets with nothing on sale are left out."""
    sections = []
    for asset in catalogue.assets:
        packs = catalogue.packs_for(asset.id)
        if packs:
            locale = babel_name(code)
            cards = tuple(_card(catalogue, pack, code, automatic_tax) for pack in packs)
            sections.append(Section(id=asset.id, name=asset.name.get(locale), cards=cards))
    return tuple(sections)
