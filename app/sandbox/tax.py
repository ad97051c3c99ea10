"""Tax Rates, and the sandbox's small deterministic tax table for Checkout's `automatic_tax`.

Stripe Tax decides rates from the buyer's address and the merchant's registrations; the sandbox
stands in with one standard rate per country (`TAX_TABLE`), so a test knows the tax it will see.
Amounts round half up to the minor unit, once per amount taxed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from . import objects
from .clock import Clock
from .discounts import wire_number
from .errors import invalid
from .events import HOSTED, Emitter, RequestContext
from .forms import apply_metadata
from .ids import new_id
from .objects import Obj
from .store import Store

# Country -> (percentage, display name, tax type): standard rates on digital goods.
TAX_TABLE: dict[str, tuple[Decimal, str, str]] = {
    "AT": (Decimal(20), "USt", "vat"),
    "AU": (Decimal(10), "GST", "gst"),
    "BE": (Decimal(21), "VAT", "vat"),
    "CA": (Decimal(5), "GST", "gst"),
    "CH": (Decimal("8.1"), "MWST", "vat"),
    "CN": (Decimal(6), "VAT", "vat"),
    "DE": (Decimal(19), "MwSt.", "vat"),
    "DK": (Decimal(25), "moms", "vat"),
    "ES": (Decimal(21), "IVA", "vat"),
    "FI": (Decimal("25.5"), "ALV", "vat"),
    "FR": (Decimal(20), "TVA", "vat"),
    "GB": (Decimal(20), "VAT", "vat"),
    "IE": (Decimal(23), "VAT", "vat"),
    "IT": (Decimal(22), "IVA", "vat"),
    "JP": (Decimal(10), "JCT", "jct"),
    "NL": (Decimal(21), "btw", "vat"),
    "NO": (Decimal(25), "MVA", "vat"),
    "NZ": (Decimal(15), "GST", "gst"),
    "PL": (Decimal(23), "VAT", "vat"),
    "SE": (Decimal(25), "Moms", "vat"),
}


_EXEMPT = {"exempt": "customer_exempt", "reverse": "reverse_charge"}


def tax_amount(amount: int, percentage: Decimal, inclusive: bool) -> int:
    """Tax on `amount` minor units: added on top (exclusive) or contained in it (inclusive)."""
    if inclusive:
        share = Decimal(amount) * percentage / (100 + percentage)
    else:
        share = Decimal(amount) * percentage / 100
    return int(share.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class AutomaticTax:
    """What automatic tax gives one amount: the tax, and the rate it used (None: not taxed)."""

    amount_tax: int
    rate: Obj | None
    # Stripe's `taxability_reason`: standard_rated, not_collecting, customer_exempt, reverse_charge
    taxability_reason: str


class Tax:
    """Tax Rates (create, retrieve, update) and the rates automatic tax applies."""

    def __init__(self, store: Store, clock: Clock, emitter: Emitter) -> None:
        self._store = store
        self._clock = clock
        self._emit = emitter.emit

    def create(self, params: Obj, ctx: RequestContext) -> Obj:
        params = _country_checked(params)
        percentage: Decimal = params["percentage"]
        rate = objects.tax_rate(new_id("txr_"), self._clock.now(), params, wire_number(percentage))
        self._store.tax_rates.add(rate)
        self._emit("tax_rate.created", rate, ctx)
        return rate

    def get(self, rate_id: str) -> Obj:
        return self._store.get_or_404(self._store.tax_rates, "tax_rate", rate_id)

    def update(self, rate_id: str, params: Obj, ctx: RequestContext) -> Obj:
        rate = self.get(rate_id)
        params = _country_checked(params)
        fields = ("active", "country", "description", "display_name", "jurisdiction", "state", "tax_type")
        changes: Obj = {k: params[k] for k in fields if k in params}
        if "metadata" in params:
            changes["metadata"] = apply_metadata(rate["metadata"], params["metadata"])
        previous = {k: rate[k] for k, v in changes.items() if rate[k] != v}
        if previous:
            rate.update(changes)
            self._emit("tax_rate.updated", rate, ctx, previous)
        return rate

    def for_rates(self, rate_ids: list[str], amount: int, param: str) -> list[tuple[Obj, int]]:
        """Each active Tax Rate a line item names (`line_items[0][tax_rates]`) and its tax on `amount`.

        Inclusive and exclusive rates both tax the line's amount, as Stripe computes them.
        """
        out: list[tuple[Obj, int]] = []
        for i, rate_id in enumerate(rate_ids):
            rate = self._store.tax_rates.get(rate_id)
            path = f"{param}[{i}]"
            if rate is None:
                raise invalid(f"No such tax rate: '{rate_id}'", param=path, code="resource_missing")
            if not rate["active"]:
                raise invalid(f"The tax rate {rate_id} is inactive.", param=path)
            out.append((rate, tax_amount(amount, Decimal(str(rate["percentage"])), rate["inclusive"])))
        return out

    def automatic_tax_for(
        self, country: str | None, amount: int, inclusive: bool, tax_exempt: str = "none"
    ) -> AutomaticTax:
        """Automatic tax on `amount` for a buyer in `country` (ISO code), by `TAX_TABLE`.

        A country outside the table is not taxed (`not_collecting`, as Stripe answers where the
        merchant has no registration); nor is a customer whose `tax_exempt` is `exempt`
        (`customer_exempt`) or `reverse` (`reverse_charge`). The rate is a Tax Rate object made
        once per country and inclusiveness, like those Stripe Tax puts in a tax breakdown.
        """
        if tax_exempt in _EXEMPT:
            return AutomaticTax(0, None, _EXEMPT[tax_exempt])
        entry = TAX_TABLE.get((country or "").upper())
        if entry is None or amount <= 0:
            return AutomaticTax(0, None, "not_collecting")
        percentage, name, kind = entry
        rate = self._table_rate((country or "").upper(), percentage, name, kind, inclusive)
        return AutomaticTax(tax_amount(amount, percentage, inclusive), rate, "standard_rated")

    def _table_rate(self, country: str, percentage: Decimal, name: str, kind: str, inclusive: bool) -> Obj:
        key = f"automatic:{country}:{'inclusive' if inclusive else 'exclusive'}"
        for rate in self._store.tax_rates.by_id.values():
            if rate["metadata"].get("sandbox_automatic_tax") == key:
                return rate
        params: Obj = {
            "display_name": name,
            "inclusive": inclusive,
            "percentage": percentage,
            "country": country,
            "jurisdiction": country,
            "tax_type": kind,
            "description": f"{name} {country} (sandbox automatic tax)",
            "metadata": {"sandbox_automatic_tax": key},
        }
        return self.create(params, HOSTED)


def _country_checked(params: Obj) -> Obj:
    country = params.get("country")
    if country is None:
        return params
    if not (len(country) == 2 and country.isalpha()):
        raise invalid(f"Invalid country: {country}. Use a 2-letter ISO code such as 'DE'.", param="country")
    return {**params, "country": country.upper()}
