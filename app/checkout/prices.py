"""A pack's ``stripe_price`` must sell what the catalogue says: checked with Stripe at start-up
and before every reload is swapped in (``app.catalogue.reload``).

Checkout sends such a pack's Price id, so Stripe charges the Price's amount, not the file's:
a Price whose amount, currency or active flag disagrees would sell the pack at another price
(fulfilment would then hold every such order for review). The Prices are asked for all at
once, so a reload waits for one round trip, and only when the file names Prices at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from app.catalogue.model import Catalogue, Pack
from app.catalogue.reload import PriceCheck, PricesUnverified
from app.stripe_gateway import ProviderRejected, ProviderUnavailable, StripeGateway

__all__ = ("price_check", "price_problems")


def price_problems(pack: Pack, price: dict[str, Any]) -> list[str]:
    """How ``price`` disagrees with ``pack``, worded like the file's own problems.

    An inactive pack may keep an active Price (retired here first, archived in Stripe later);
    an active pack on an archived Price could not be bought at all.
    """
    where = f"pack '{pack.id}': stripe_price"
    problems = []
    if price.get("unit_amount") != pack.price_minor:
        problems.append(
            f"{where}: Stripe's {pack.stripe_price} costs {price.get('unit_amount')} minor units, "
            f"the pack says {pack.price_minor} ({pack.price} {pack.currency})"
        )
    if str(price.get("currency", "")).upper() != pack.currency:
        problems.append(
            f"{where}: Stripe's {pack.stripe_price} is in {str(price.get('currency', '')).upper()}, "
            f"the pack says {pack.currency}"
        )
    if pack.active and not price.get("active"):
        problems.append(f"{where}: Stripe's {pack.stripe_price} is archived (inactive), the pack is on sale")
    if price.get("type", "one_time") != "one_time":
        problems.append(f"{where}: Stripe's {pack.stripe_price} is {price.get('type')}, not a one-time price")
    return problems


def price_check(gateway: StripeGateway) -> PriceCheck:
    """The holder's check: every pack's Price retrieved (concurrently) and compared."""

    async def check(catalogue: Catalogue) -> Sequence[str]:
        packs = [pack for pack in catalogue.packs if pack.stripe_price]
        if not packs:
            return []
        answers = await asyncio.gather(
            *(gateway.retrieve_price(str(pack.stripe_price)) for pack in packs), return_exceptions=True
        )
        problems: list[str] = []
        for pack, answer in zip(packs, answers, strict=True):
            if isinstance(answer, ProviderUnavailable):
                raise PricesUnverified(answer.detail or answer.code)
            if isinstance(answer, ProviderRejected):
                problems.append(
                    f"pack '{pack.id}': stripe_price: Stripe refused {pack.stripe_price} ({answer.detail})"
                )
            elif isinstance(answer, BaseException):
                raise answer
            else:
                problems += price_problems(pack, answer)
        return problems

    return check
