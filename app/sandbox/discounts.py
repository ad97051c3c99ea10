"""Coupons and Promotion Codes, and the one place that says what a discount takes off a payment.

Checkout calls `apply` while it prices a session (it raises Stripe's error naming the parameter
when a code or coupon can't be used) and `redeem` when the session completes, which counts the
redemption and retires a coupon or code that has reached its limit.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from . import objects
from .clock import Clock
from .errors import StripeError, invalid, missing_param
from .events import Emitter, RequestContext
from .forms import apply_metadata, not_simulated
from .ids import new_id
from .money import SUPPORTED, format_plain
from .objects import Obj
from .store import Store

_CODE = re.compile(r"^[a-zA-Z0-9-]+$")


def wire_number(value: Decimal) -> int | float:
    """A percentage as Stripe prints it: 25 stays an integer, 25.5 a JSON decimal."""
    return int(value) if value == value.to_integral_value() else float(value)


@dataclass(frozen=True)
class Applied:
    """A discount a session will take: how much, from which coupon, through which code."""

    amount: int
    coupon: str
    promotion_code: str | None


def discount_amount(coupon: Obj, subtotal: int) -> int:
    """What a coupon takes off `subtotal` (minor units), never more than the subtotal."""
    if coupon["amount_off"] is not None:
        return min(int(coupon["amount_off"]), subtotal)
    off = (Decimal(subtotal) * Decimal(str(coupon["percent_off"])) / 100).quantize(
        Decimal(1), rounding=ROUND_HALF_UP
    )
    return min(int(off), subtotal)


class Discounts:
    """Creates, updates and lists coupons and promotion codes; prices and redeems discounts."""

    def __init__(self, store: Store, clock: Clock, emitter: Emitter) -> None:
        self._store = store
        self._clock = clock
        self._emit = emitter.emit

    # ---------------------------------------------------------------------------- coupons

    def create_coupon(self, params: Obj, ctx: RequestContext) -> Obj:
        store = self._store
        percent = params.get("percent_off")
        amount = params.get("amount_off")
        if (percent is None) == (amount is None):
            raise invalid("You must pass exactly one of `percent_off` or `amount_off`.", param="percent_off")
        if amount is not None:
            if "currency" not in params:
                raise missing_param("currency")
            if params["currency"].lower() not in SUPPORTED:
                raise invalid(f"Invalid currency: {params['currency']}.", param="currency")
        elif "currency" in params:
            raise invalid("`currency` is only used with `amount_off`.", param="currency")
        duration = params.get("duration", "once")
        if duration != "once":
            # One-off Checkout payments redeem a coupon once, whatever its duration; `forever` and
            # `repeating` differ only for subscriptions and invoices, which the sandbox lacks.
            raise not_simulated("duration")
        now = self._clock.now()
        if "redeem_by" in params and params["redeem_by"] <= now:
            raise invalid("Redeem by must be in the future.", param="redeem_by")
        coupon_id = params.get("id") or "".join(
            secrets.choice(string.ascii_letters + string.digits) for _ in range(8)
        )
        if store.coupons.get(coupon_id) is not None:
            raise invalid("Coupon already exists.", param="id", code="resource_already_exists")
        coupon = objects.coupon(coupon_id, now, params, wire_number(percent) if percent is not None else None)
        store.coupons.add(coupon)
        self._emit("coupon.created", coupon, ctx)
        return coupon

    def update_coupon(self, coupon_id: str, params: Obj, ctx: RequestContext) -> Obj:
        coupon = self.coupon(coupon_id)
        return self._updated("coupon", coupon, params, ("name",), ctx)

    def _updated(self, kind: str, obj: Obj, params: Obj, fields: tuple[str, ...], ctx: RequestContext) -> Obj:
        """Apply an update's plain fields and metadata patch; `<kind>.updated` names what changed."""
        previous: Obj = {k: obj[k] for k in (*fields, "metadata") if k in params}
        for name in fields:
            if name in params:
                obj[name] = params[name]
        if "metadata" in params:
            obj["metadata"] = apply_metadata(obj["metadata"], params["metadata"])
        self._emit(f"{kind}.updated", obj, ctx, previous)
        return obj

    def coupon(self, coupon_id: str) -> Obj:
        coupon = self._store.get_or_404(self._store.coupons, "coupon", coupon_id)
        self._refresh_coupon(coupon)
        return coupon

    def _refresh_coupon(self, coupon: Obj) -> None:
        """`valid` as Stripe derives it: not past `redeem_by`, not out of redemptions."""
        expired = coupon["redeem_by"] is not None and coupon["redeem_by"] <= self._clock.now()
        spent = (
            coupon["max_redemptions"] is not None and coupon["times_redeemed"] >= coupon["max_redemptions"]
        )
        if coupon["valid"] and (expired or spent):
            coupon["valid"] = False
            self._store.mark_dirty()

    def refresh_all(self, _now: int) -> None:
        """Clock hook: coupons past `redeem_by` turn invalid as the clock passes it."""
        for coupon in self._store.coupons.by_id.values():
            if coupon["valid"] and coupon["redeem_by"] is not None:
                self._refresh_coupon(coupon)

    # --------------------------------------------------------------------- promotion codes

    def create_promotion_code(self, params: Obj, ctx: RequestContext) -> Obj:
        store = self._store
        promotion = params.get("promotion")
        if promotion is not None and "coupon" in params:
            raise invalid("Pass the coupon as `promotion[coupon]` or `coupon`, not both.", param="coupon")
        coupon_id = promotion.get("coupon") if promotion is not None else params.get("coupon")
        if coupon_id is None:
            raise missing_param("promotion[coupon]" if promotion is not None else "promotion")
        coupon_param = "promotion[coupon]" if promotion is not None else "coupon"
        coupon = self._store.coupons.get(coupon_id)
        if coupon is None:
            raise invalid(f"No such coupon: '{coupon_id}'", param=coupon_param, code="resource_missing")
        self._refresh_coupon(coupon)
        if not coupon["valid"]:
            raise invalid(f"Coupon {coupon_id} is no longer valid.", param=coupon_param)
        code = params.get("code") or "".join(
            secrets.choice(string.ascii_uppercase + string.digits) for _ in range(8)
        )
        if not _CODE.match(code):
            raise invalid(
                "Promotion codes may only contain letters (a-z, A-Z), digits (0-9) and dashes (-).",
                param="code",
            )
        active = params.get("active", True)
        if active and self.find_code(code) is not None:
            raise invalid(
                f"An active promotion code with `code: {code}` already exists.",
                param="code",
                code="resource_already_exists",
            )
        now = self._clock.now()
        expires_at = params.get("expires_at")
        if expires_at is not None:
            if expires_at <= now:
                raise invalid("The `expires_at` timestamp must be in the future.", param="expires_at")
            if coupon["redeem_by"] is not None and expires_at > coupon["redeem_by"]:
                raise invalid(
                    "The promotion code's `expires_at` cannot be after the coupon's `redeem_by`.",
                    param="expires_at",
                )
        limit = params.get("max_redemptions")
        if limit is not None and coupon["max_redemptions"] is not None and limit > coupon["max_redemptions"]:
            raise invalid(
                "The promotion code's `max_redemptions` cannot be greater than the coupon's "
                f"`max_redemptions` ({coupon['max_redemptions']}).",
                param="max_redemptions",
            )
        customer = params.get("customer")
        if customer is not None and store.customers.live(customer) is None:
            raise invalid(f"No such customer: '{customer}'", param="customer", code="resource_missing")
        restrictions = params.get("restrictions", {})
        if ("minimum_amount" in restrictions) != ("minimum_amount_currency" in restrictions):
            missing = "minimum_amount_currency" if "minimum_amount" in restrictions else "minimum_amount"
            raise missing_param(f"restrictions[{missing}]")
        currency = restrictions.get("minimum_amount_currency")
        if currency is not None and currency.lower() not in SUPPORTED:
            raise invalid(f"Invalid currency: {currency}.", param="restrictions[minimum_amount_currency]")
        promo = objects.promotion_code(new_id("promo_"), now, code, coupon_id, params)
        store.promotion_codes.add(promo)
        self._emit("promotion_code.created", promo, ctx)
        return promo

    def update_promotion_code(self, promo_id: str, params: Obj, ctx: RequestContext) -> Obj:
        promo = self.promotion_code(promo_id)
        if params.get("active") is True and not promo["active"]:
            coupon = self.coupon(promo["promotion"]["coupon"])
            if not coupon["valid"]:
                raise invalid(
                    "This promotion code cannot be reactivated because its coupon is no longer valid.",
                    param="active",
                )
            if self.find_code(promo["code"]) is not None:
                raise invalid(
                    f"An active promotion code with `code: {promo['code']}` already exists.",
                    param="active",
                )
        return self._updated("promotion_code", promo, params, ("active",), ctx)

    def promotion_code(self, promo_id: str) -> Obj:
        return self._store.get_or_404(self._store.promotion_codes, "promotion_code", promo_id)

    def find_code(self, code: str) -> Obj | None:
        """The active promotion code a buyer typed (codes match regardless of case)."""
        wanted = code.lower()
        for promo in self._store.promotion_codes.by_id.values():
            if promo["active"] and promo["code"].lower() == wanted:
                return promo
        return None

    # --------------------------------------------------------------- pricing and redemption

    def apply(
        self,
        subtotal: int,
        currency: str,
        *,
        coupon: str | None = None,
        promotion_code: str | None = None,
        customer: str | None = None,
        param: str = "discounts[0]",
    ) -> Applied:
        """The discount a coupon (by id) or promotion code (by `promo_` id) gives this payment.

        Raises Stripe's 400 naming `param` when it can't be used: unknown, inactive, expired, used
        up, restricted to another customer, below its minimum amount, or in another currency.
        """
        promo: Obj | None = None
        if promotion_code is not None:
            promo = self._store.promotion_codes.get(promotion_code)
            if promo is None:
                raise invalid(
                    f"No such promotion code: '{promotion_code}'",
                    param=f"{param}[promotion_code]",
                    code="resource_missing",
                )
            coupon = promo["promotion"]["coupon"]
            self._check_code(promo, subtotal, currency, customer, f"{param}[promotion_code]")
        if coupon is None:
            raise missing_param(f"{param}[coupon]")
        found = self._store.coupons.get(coupon)
        if found is None:
            raise invalid(f"No such coupon: '{coupon}'", param=f"{param}[coupon]", code="resource_missing")
        self._refresh_coupon(found)
        if not found["valid"]:
            raise invalid(f"This coupon ({coupon}) is no longer valid.", param=f"{param}[coupon]")
        if found["currency"] is not None and found["currency"] != currency:
            raise invalid(
                f"The coupon {coupon} is in {found['currency']} and cannot be applied to a payment in "
                f"{currency}.",
                param=f"{param}[coupon]",
            )
        return Applied(discount_amount(found, subtotal), found["id"], promo["id"] if promo else None)

    def _check_code(self, promo: Obj, subtotal: int, currency: str, customer: str | None, param: str) -> None:
        now = self._clock.now()
        if not promo["active"]:
            raise invalid(f"The promotion code {promo['code']} is inactive.", param=param)
        if promo["expires_at"] is not None and promo["expires_at"] <= now:
            raise invalid(f"The promotion code {promo['code']} has expired.", param=param)
        if promo["max_redemptions"] is not None and promo["times_redeemed"] >= promo["max_redemptions"]:
            raise invalid(
                f"The promotion code {promo['code']} has reached its maximum number of redemptions.",
                param=param,
            )
        if promo["customer"] is not None and promo["customer"] != customer:
            raise invalid(f"The promotion code {promo['code']} is for another customer.", param=param)
        rules = promo["restrictions"]
        minimum = rules["minimum_amount"]
        if minimum is not None:
            if rules["minimum_amount_currency"] != currency:
                raise invalid(
                    f"The promotion code {promo['code']} can only be used for payments in "
                    f"{rules['minimum_amount_currency']}.",
                    param=param,
                )
            if subtotal < minimum:
                raise invalid(
                    f"The promotion code {promo['code']} needs a purchase of at least "
                    f"{format_plain(minimum, currency)}.",
                    param=param,
                )
        if rules["first_time_transaction"] and customer is not None and self._has_paid(customer):
            raise invalid(
                f"The promotion code {promo['code']} is only for a customer's first payment.", param=param
            )

    def _has_paid(self, customer: str) -> bool:
        return any(
            pi["customer"] == customer and pi["status"] == "succeeded"
            for pi in self._store.payment_intents.by_id.values()
        )

    def code_error(self, code: str, subtotal: int, currency: str, customer: str | None) -> str | None:
        """For the hosted page's code field: why a typed code can't be used, or None if it can."""
        promo = self.find_code(code)
        if promo is None:
            return "This code is invalid."
        try:
            self.apply(subtotal, currency, promotion_code=promo["id"], customer=customer)
        except StripeError as err:
            return err.message
        return None

    def redeem(self, applied: Applied) -> None:
        """Count one redemption when the session completes (a spent coupon turns invalid)."""
        coupon = self._store.coupons.by_id[applied.coupon]
        coupon["times_redeemed"] += 1
        self._refresh_coupon(coupon)
        if applied.promotion_code is not None:
            self._store.promotion_codes.by_id[applied.promotion_code]["times_redeemed"] += 1
        self._store.mark_dirty()
