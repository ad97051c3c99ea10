"""What the pricing page shows, computed from the live catalogue for one language.

Kept apart from the template so the page and its tests read the same numbers:
prices and unit prices come from the catalogue's money helpers (Babel, exact
Decimals), never from the request.
"""

from __future__ import annotations

from dataclasses import dataclass

from babel.numbers import format_decimal

from app.i18n import babel_name
from app.i18n import gettext as _

from .model import Catalogue, Pack

__all__ = ["PackCard", "Section", "pricing_sections"]


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


@dataclass(frozen=True, slots=True)
class Section:
    """An asset and its active packs, in display order."""

    id: str
    name: str
    cards: tuple[PackCard, ...]


def _card(catalogue: Catalogue, pack: Pack, code: str) -> PackCard:
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
    )


def pricing_sections(catalogue: Catalogue, code: str) -> tuple[Section, ...]:
    """Assets in file order with their active packs; assets with nothing on sale are left out."""
    sections = []
    for asset in catalogue.assets:
        packs = catalogue.packs_for(asset.id)
        if packs:
            locale = babel_name(code)
            cards = tuple(_card(catalogue, pack, code) for pack in packs)
            sections.append(Section(id=asset.id, name=asset.name.get(locale), cards=cards))
    return tuple(sections)
