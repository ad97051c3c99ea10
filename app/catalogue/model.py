"""Frozen, typed view of ``pricing.toml``.

Everything is immutable (frozen dataclasses, tuples, read-only mappings) so a
catalogue can be shared between requests and swapped wholesale on reload
without anyone observing a half-updated state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType

from .money import format_money, format_unit_amount, from_minor

__all__ = [
    "LANGUAGES",
    "Asset",
    "Catalogue",
    "Pack",
    "Text",
    "format_unit_price",
    "language_of",
    "unit_price",
]

# Languages every piece of customer-facing text must exist in.
LANGUAGES: tuple[str, ...] = ("en", "zh")

_BEST_VALUE = {"en": "Best value", "zh": "最超值"}


def language_of(locale: str) -> str:
    """Map a Babel/HTTP locale ("zh_Hans_CN", "zh-TW", "en_GB") to a catalogue language."""
    return "zh" if locale.lower().replace("-", "_").startswith("zh") else "en"


@dataclass(frozen=True, slots=True)
class Text:
    """A string translated into every language in ``LANGUAGES``."""

    en: str
    zh: str

    def get(self, locale: str = "en") -> str:
        return self.zh if language_of(locale) == "zh" else self.en


@dataclass(frozen=True, slots=True)
class Asset:
    """Something a customer's balance is counted in (coins, API calls...)."""

    id: str
    name: Text
    unit_singular: Text
    unit_plural: Text
    low_balance: int | None = None
    """Below this many units a debit tells hosts ``balance.low`` (None: never)."""

    def unit_label(self, count: int, locale: str = "en") -> str:
        """Unit word agreeing with ``count`` ("1 coin", "2 coins"; Chinese has one form)."""
        return (self.unit_singular if count == 1 else self.unit_plural).get(locale)


@dataclass(frozen=True, slots=True)
class Pack:
    """One purchasable product; ``price_minor`` is what goes to Stripe."""

    id: str
    asset: str
    units: int
    bonus: int
    price: Decimal  # major units, scaled to the currency's exponent
    price_minor: int
    currency: str  # upper-case ISO 4217
    name: Text
    description: Text
    order: int
    active: bool = True
    badge: Text | None = None
    stripe_price: str | None = None
    expires_after_days: int | None = None
    """Bought units expire this many days after the purchase is credited (None: never)."""
    promotion_codes: bool = False
    """Checkout shows a promotion code field (``allow_promotion_codes``)."""
    tax_inclusive: bool = False
    """With automatic tax on, ``price`` already includes tax (else tax is added on top)."""

    @property
    def total_units(self) -> int:
        """Units credited to the ledger: the base amount plus the bonus."""
        return self.units + self.bonus

    @property
    def unit_price(self) -> Decimal:
        """Exact price per credited unit (bonus included), in major units."""
        return from_minor(self.price_minor, self.currency) / Decimal(self.total_units)

    def price_display(self, locale: str = "en") -> str:
        return format_money(self.price_minor, self.currency, locale)

    def unit_price_display(self, locale: str = "en") -> str:
        """Per-unit price rounded for display, e.g. "$0.0999"."""
        return format_unit_amount(self.unit_price, self.currency, locale)


def unit_price(pack: Pack) -> Decimal:
    """Price per unit including bonus units; see ``Pack.unit_price``."""
    return pack.unit_price


def format_unit_price(pack: Pack, asset: Asset, locale: str = "en") -> str:
    """Per-unit price sentence for a pack card: "$0.0999 per call" / "US$0.0999/次调用"."""
    amount = pack.unit_price_display(locale)
    unit = asset.unit_singular.get(locale)
    return f"{amount}/{unit}" if language_of(locale) == "zh" else f"{amount} per {unit}"


@dataclass(frozen=True, slots=True)
class Catalogue:
    """All assets and packs from one valid version of ``pricing.toml``."""

    assets: tuple[Asset, ...]
    packs: tuple[Pack, ...]  # in file order, inactive ones included
    version: str  # short sha256 of the file bytes; changes iff the file does
    loaded_at: datetime
    source: str = "pricing.toml"
    # Lookup indexes, derived from the tuples above; excluded from eq/hash.
    _packs_by_id: Mapping[str, Pack] = field(init=False, repr=False, compare=False, hash=False)
    _assets_by_id: Mapping[str, Asset] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        # frozen: bypass __setattr__ once, while the object is still private to us
        object.__setattr__(self, "_packs_by_id", MappingProxyType({p.id: p for p in self.packs}))
        object.__setattr__(self, "_assets_by_id", MappingProxyType({a.id: a for a in self.assets}))

    def asset(self, asset_id: str) -> Asset | None:
        return self._assets_by_id.get(asset_id)

    def unit_label(self, asset_id: str, count: int, locale: str = "en") -> str:
        """The unit word for ``count`` of an asset (its id when the catalogue no longer has it).

        A debit of 1 reads "1 coin" too: the word agrees with the size, not the sign.
        """
        asset = self.asset(asset_id)
        return asset.unit_label(abs(count), locale) if asset is not None else asset_id

    def get(self, pack_id: str) -> Pack | None:
        """Any pack by id, active or not (orders reference retired packs too)."""
        return self._packs_by_id.get(pack_id)

    def get_active(self, pack_id: str) -> Pack | None:
        """A pack that may be bought now; None for unknown or inactive ids."""
        pack = self._packs_by_id.get(pack_id)
        return pack if pack is not None and pack.active else None

    def packs_for(self, asset_id: str, currency: str | None = None) -> tuple[Pack, ...]:
        """Active packs of an asset in display order (ties broken by id for stability).

        ``currency`` narrows the list, e.g. to what a CNY-paying visitor is offered.
        """
        code = currency.upper() if currency else None
        return tuple(
            sorted(
                (
                    p
                    for p in self.packs
                    if p.asset == asset_id and p.active and (code is None or p.currency == code)
                ),
                key=lambda p: (p.order, p.id),
            )
        )

    def best_value(self, asset_id: str, currency: str | None = None) -> str | None:
        """Id of the active pack with the lowest unit price, None if there are none.

        Unit prices are only comparable within one currency, so packs are
        compared in ``currency``; by default the currency of the asset's first
        pack in display order.  Ties go to the pack shown first, so the badge
        lands on a stable card.
        """
        packs = self.packs_for(asset_id)
        if not packs:
            return None
        code = currency.upper() if currency else packs[0].currency
        same = [p for p in packs if p.currency == code]
        if not same:
            return None
        return min(same, key=lambda p: (p.unit_price, p.order, p.id)).id

    def badge_for(self, pack_id: str, locale: str = "en") -> str | None:
        """Badge to print on a pack's card.

        A ``badge`` written in the file wins; otherwise the computed best-value
        pack of its asset and currency gets a "Best value" badge, provided
        there is at least one other pack in that currency to compare with.
        """
        pack = self.get(pack_id)
        if pack is None or not pack.active:
            return None
        if pack.badge is not None:
            return pack.badge.get(locale)
        rivals = self.packs_for(pack.asset, pack.currency)
        if len(rivals) > 1 and self.best_value(pack.asset, pack.currency) == pack.id:
            return _BEST_VALUE[language_of(locale)]
        return None
