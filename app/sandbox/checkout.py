"""Checkout Sessions: creation (line items, Prices, payment method types), expiry and completion.

The session's lifecycle lives here; paying for one is `payments`, which asks this module for an
open session and hands it back to be completed.
"""

from __future__ import annotations

import heapq

from . import objects
from .catalog import line_price
from .clock import Clock
from .customers import Customers
from .discounts import Applied, Discounts
from .errors import StripeError, invalid, missing_param
from .events import HOSTED, Emitter, RequestContext
from .forms import apply_metadata, looks_like_email
from .ids import new_id, session_id
from .money import MAXIMUM, SUPPORTED, format_plain, minimum
from .objects import Obj
from .params import MAX_UNIT_AMOUNT, SIMULATED_METHODS
from .store import Store
from .tax import Tax


class Checkout:
    """Sessions and their line items; expires open sessions as the clock passes."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        emitter: Emitter,
        discounts: Discounts,
        customers: Customers,
        tax: Tax,
    ) -> None:
        self._tax = tax
        self._store = store
        self._clock = clock
        self._emit = emitter.emit
        self._discounts = discounts
        self._customers = customers
        # (expires_at, session id) of open sessions; rebuilt from the store, so never persisted.
        self._expiry_heap = [
            (s["expires_at"], s["id"]) for s in store.sessions.dump() if s["status"] == "open"
        ]
        heapq.heapify(self._expiry_heap)

    # ---------------------------------------------------------------------------- creation

    def create_session(self, params: Obj, ctx: RequestContext, public_url: str) -> Obj:
        if params["mode"] != "payment":
            raise invalid("The Stripe sandbox only simulates Checkout in `payment` mode.", param="mode")
        if params.get("ui_mode", "hosted") != "hosted":
            raise invalid(
                "The Stripe sandbox only simulates hosted Checkout (`ui_mode=hosted`).", param="ui_mode"
            )
        raw_items = params.get("line_items")
        if not raw_items:
            raise missing_param("line_items")
        now = self._clock.now()
        items: list[Obj] = []
        descriptions: list[str | None] = []
        item_rates: list[list[str]] = []
        automatic = bool(params.get("automatic_tax", {}).get("enabled"))
        currency: str | None = None
        for i, raw in enumerate(raw_items):
            path = f"line_items[{i}]"
            price, description = self._line_price(raw, path, now)
            descriptions.append((raw.get("price_data") or {}).get("product_data", {}).get("description"))
            if currency is not None and price["currency"] != currency:
                raise invalid(
                    "Line items must all have the same currency; "
                    f"{path} uses {price['currency']} but earlier items use {currency}.",
                    param=f"{path}[price_data][currency]",
                )
            currency = price["currency"]
            quantity = raw.get("quantity")
            if quantity is None:
                raise missing_param(f"{path}[quantity]")
            item = objects.line_item(new_id("li_"), price, quantity, description)
            item["adjustable_quantity"] = _adjustable(raw.get("adjustable_quantity"), quantity, path)
            rates = raw.get("tax_rates") or []
            if rates and automatic:
                raise invalid(
                    "You cannot use `tax_rates` together with `automatic_tax[enabled]=true`.",
                    param=f"{path}[tax_rates]",
                )
            self._tax.for_rates(rates, int(item["amount_subtotal"]), f"{path}[tax_rates]")
            item_rates.append(rates)
            items.append(item)
        assert currency is not None
        if "currency" in params and params["currency"].lower() != currency:
            raise invalid(
                f"The currency {params['currency']} does not match the line items' currency {currency}.",
                param="currency",
            )
        total = sum(int(item["amount_total"]) for item in items)
        _check_total(total, currency)
        expires_at = params.get("expires_at")
        if expires_at is None:
            expires_at = now + 24 * 3600
        elif expires_at < now + 30 * 60:
            raise invalid(
                "The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.",
                param="expires_at",
            )
        elif expires_at > now + 24 * 3600:
            raise invalid(
                "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
                param="expires_at",
            )
        customer = self._session_customer(params)
        discount = self._requested_discount(params, total, currency, customer)
        email = params.get("customer_email")
        if email is not None and not looks_like_email(email):
            raise invalid(f"Invalid email address: {email}", param="customer_email", code="email_invalid")
        pid_data = params.get("payment_intent_data", {})
        capture = pid_data.get("capture_method", "automatic")
        methods = _method_types(params.get("payment_method_types"), currency, capture)
        sid = session_id()
        session = objects.checkout_session(
            session_id=sid,
            created=now,
            expires_at=expires_at,
            currency=currency,
            amount=total,
            url=f"{public_url.rstrip('/')}/c/pay/{sid}",
            params=params,
            payment_method_types=methods,
        )
        if params.get("payment_method_types") is None:
            session["payment_method_configuration_details"] = {"id": "pmc_sandbox_default", "parent": None}
        for name in ("submit_type", "billing_address_collection", "customer_creation"):
            if params.get(name):
                session[name] = params[name]
        if customer is not None:
            session["customer"] = customer["id"]
        store = self._store
        store.sessions.add(session)
        store.line_items[sid] = items
        store.session_extra[sid] = {
            "payment_intent": None,
            "pi_metadata": pid_data.get("metadata", {}),
            "pi_description": pid_data.get("description"),
            "receipt_email": pid_data.get("receipt_email"),
            "capture_method": capture,
            "statement_descriptor": pid_data.get("statement_descriptor"),
            "statement_descriptor_suffix": pid_data.get("statement_descriptor_suffix"),
            "product_descriptions": descriptions,
            "customer_update": params.get("customer_update", {}),
            "discount": discount,
            "tax_rates": item_rates,
            "tax_country": None,
        }
        if automatic:
            session["automatic_tax"] = {
                "enabled": True,
                "liability": {"account": None, "type": "self"},
                "provider": "stripe",
                "status": "requires_location_inputs",
            }
            home = (customer or {}).get("address") or {}
            store.session_extra[sid]["tax_country"] = home.get("country")
        self.recompute(session)
        heapq.heappush(self._expiry_heap, (expires_at, sid))
        store.mark_dirty()
        return session

    def _session_customer(self, params: Obj) -> Obj | None:
        """The `customer` a session is for, with Stripe's rules on what may come with it."""
        cid = params.get("customer")
        if cid is None:
            if "customer_update" in params:
                raise invalid("`customer_update` can only be used with `customer`.", param="customer_update")
            return None
        for other in ("customer_email", "customer_creation"):
            if other in params:
                raise invalid(
                    f"You may only specify one of these parameters: customer, {other}.", param=other
                )
        customer = self._store.customers.live(cid)
        if customer is None:
            raise invalid(f"No such customer: '{cid}'", param="customer", code="resource_missing")
        return customer

    def _requested_discount(
        self, params: Obj, subtotal: int, currency: str, customer: Obj | None
    ) -> Obj | None:
        """`discounts[0]` checked against the payment now (it is priced again as totals change)."""
        wanted = params.get("discounts") or []
        if not wanted:
            return None
        if params.get("allow_promotion_codes"):
            raise invalid(
                "You may only specify one of these parameters: allow_promotion_codes, discounts.",
                param="discounts",
            )
        first = wanted[0]
        if "coupon" in first and "promotion_code" in first:
            raise invalid(
                "You may only specify one of these parameters: discounts[0][coupon], "
                "discounts[0][promotion_code].",
                param="discounts[0]",
            )
        applied = self._discounts.apply(
            subtotal,
            currency,
            coupon=first.get("coupon"),
            promotion_code=first.get("promotion_code"),
            customer=customer["id"] if customer else None,
        )
        return {"coupon": applied.coupon, "promotion_code": applied.promotion_code}

    def tax_location(self, sid: str, country: str | None) -> None:
        """The buyer's country as entered on the page: automatic tax is priced for it."""
        session = self.open_session(sid)
        if session["automatic_tax"]["enabled"] and country:
            self._store.session_extra[sid]["tax_country"] = country
            self.recompute(session)

    def known_email(self, session: Obj) -> str | None:
        """The email Checkout already has: `customer_email`, or the session's customer's."""
        if session["customer_email"]:
            return str(session["customer_email"])
        customer = self._store.customers.live(session["customer"]) if session["customer"] else None
        return str(customer["email"]) if customer and customer["email"] else None

    def set_promotion_code(self, sid: str, code: str | None) -> str | None:
        """The hosted page's code field: apply a typed code (or remove it with None).

        Returns why the code can't be used (the session is unchanged then), or None.
        """
        session = self.open_session(sid)
        extra = self._store.session_extra[sid]
        if code is None:
            extra["discount"] = None
            self.recompute(session)
            return None
        subtotal = sum(int(i["amount_subtotal"]) for i in self._store.line_items[sid])
        error = self._discounts.code_error(code, subtotal, session["currency"], session["customer"])
        if error is not None:
            return error
        promo = self._discounts.find_code(code)
        assert promo is not None
        extra["discount"] = {"coupon": promo["promotion"]["coupon"], "promotion_code": promo["id"]}
        self.recompute(session)
        return None

    def update_session(self, sid: str, params: Obj) -> Obj:
        """`POST /v1/checkout/sessions/{id}`: metadata merges key by key; an empty value removes a key."""
        session = self._store.get_or_404(self._store.sessions, "checkout.session", sid)
        if "metadata" in params:
            merged = apply_metadata(session["metadata"], params["metadata"])
            if len(merged) > 50:
                raise invalid("You can only specify up to 50 keys in metadata.", param="metadata")
            session["metadata"] = merged
            self._store.mark_dirty()
        return session

    def set_quantities(self, sid: str, quantities: dict[str, int]) -> dict[str, str]:
        """The hosted page's quantity controls: new quantities within each item's bounds, totals redone.

        Returns field errors by line item id; nothing changes when there is one.
        """
        session = self.open_session(sid)
        items = self._store.line_items[sid]
        errors: dict[str, str] = {}
        for item in items:
            wanted = quantities.get(item["id"])
            bounds = item["adjustable_quantity"]
            if wanted is None or not bounds:
                continue
            if not bounds["minimum"] <= wanted <= bounds["maximum"]:
                errors[item["id"]] = f"{bounds['minimum']}-{bounds['maximum']}"
        if errors:
            return errors
        changed = [i for i in items if i["id"] in quantities and i["adjustable_quantity"]]
        if not changed:
            return {}
        before = {i["id"]: i["quantity"] for i in changed}
        for item in changed:
            _set_quantity(item, quantities[item["id"]])
        total = sum(int(i["amount_subtotal"]) for i in items)
        if total < minimum(session["currency"]) or total > MAXIMUM:
            for item in changed:
                _set_quantity(item, before[item["id"]])
            return {i["id"]: "total" for i in changed}
        self.recompute(session)
        return {}

    def _taxes(self, session: Obj, items: list[Obj]) -> list[int]:
        """Set each item's `amount_tax`; returns the exclusive part of each (added to its total).

        Tax is on what is paid after the discount; an inclusive rate or price already contains it.
        """
        extra = self._store.session_extra[session["id"]]
        automatic = session["automatic_tax"]
        added: list[int] = []
        for i, item in enumerate(items):
            base = int(item["amount_subtotal"]) - int(item["amount_discount"])
            taxes: list[tuple[int, bool]]
            if automatic["enabled"]:
                inclusive = item["price"]["tax_behavior"] == "inclusive"
                country = extra.get("tax_country")
                found = self._tax.automatic_tax_for(country, base, inclusive) if country else None
                taxes = [(found.amount_tax, inclusive)] if found else []
            else:
                rates = (extra.get("tax_rates") or [[]] * len(items))[i]
                taxes = [
                    (amount, bool(rate["inclusive"])) for rate, amount in self._tax.for_rates(rates, base, "")
                ]
            item["amount_tax"] = sum(amount for amount, _inclusive in taxes)
            added.append(sum(amount for amount, inclusive in taxes if not inclusive))
        if automatic["enabled"]:
            automatic["status"] = "complete" if extra.get("tax_country") else "requires_location_inputs"
        return added

    def _applied(self, session: Obj, subtotal: int) -> Applied | None:
        """The session's discount priced for `subtotal`; one that no longer applies is dropped."""
        extra = self._store.session_extra[session["id"]]
        wanted = extra.get("discount")
        if not wanted:
            return None
        try:
            return self._discounts.apply(
                subtotal,
                session["currency"],
                coupon=None if wanted["promotion_code"] else wanted["coupon"],
                promotion_code=wanted["promotion_code"],
                customer=session["customer"],
            )
        except StripeError:
            extra["discount"] = None
            return None

    def recompute(self, session: Obj) -> None:
        """Session amounts from its line items (after a quantity, discount or tax change)."""
        items = self._store.line_items[session["id"]]
        subtotal = sum(int(i["amount_subtotal"]) for i in items)
        applied = self._applied(session, subtotal)
        shares = _allocate(applied.amount if applied else 0, [int(i["amount_subtotal"]) for i in items])
        for item, share in zip(items, shares, strict=True):
            item["amount_discount"] = share
        session["discounts"] = (
            [
                {
                    "coupon": None if applied.promotion_code else applied.coupon,
                    "promotion_code": applied.promotion_code,
                }
            ]
            if applied
            else []
        )
        added = self._taxes(session, items)
        for item, extra_tax in zip(items, added, strict=True):
            item["amount_total"] = item["amount_subtotal"] - item["amount_discount"] + extra_tax
        discount = sum(int(i["amount_discount"]) for i in items)
        tax = sum(int(i["amount_tax"]) for i in items)
        session["amount_subtotal"] = subtotal
        session["amount_total"] = subtotal - discount + sum(added)
        details = session["total_details"]
        details.update(amount_discount=discount, amount_tax=tax)
        pi_id = self._store.session_extra[session["id"]].get("payment_intent")
        if pi_id:
            self._store.payment_intents.by_id[pi_id]["amount"] = session["amount_total"]
        self._store.mark_dirty()

    def _line_price(self, raw: Obj, path: str, now: int) -> tuple[Obj, str]:
        if "price" in raw and "price_data" in raw:
            raise invalid(
                f"You may only specify one of these parameters: {path}[price], {path}[price_data].",
                param=f"{path}[price]",
            )
        if "price" in raw:
            return line_price(self._store, raw["price"], f"{path}[price]")
        data = raw.get("price_data")
        if data is None:
            raise missing_param(f"{path}[price_data]")
        dpath = f"{path}[price_data]"
        currency = data["currency"].lower()
        if currency not in SUPPORTED:
            raise invalid(
                f"Invalid currency: {data['currency']}. Stripe currently supports these currencies: "
                + ", ".join(sorted(SUPPORTED)),
                param=f"{dpath}[currency]",
            )
        if data.get("recurring"):
            raise invalid(
                "You specified `payment` mode but passed a recurring price. Either switch to "
                "`subscription` mode or use only one-time prices.",
                param=f"{dpath}[recurring]",
            )
        amount = data.get("unit_amount")
        if amount is None:
            decimal = data.get("unit_amount_decimal")
            if decimal is None:
                raise missing_param(f"{dpath}[unit_amount]")
            if not decimal.isdigit():
                raise invalid(
                    "The sandbox supports only whole minor units in unit_amount_decimal.",
                    param=f"{dpath}[unit_amount_decimal]",
                )
            amount = int(decimal)
            if amount > MAX_UNIT_AMOUNT:
                raise invalid(
                    f"This value must be less than or equal to {MAX_UNIT_AMOUNT}.",
                    param=f"{dpath}[unit_amount_decimal]",
                )
        product_data = data.get("product_data")
        behavior = data.get("tax_behavior", "unspecified")
        if "product" in data:
            product = self._store.products.get(data["product"])
            if product is None:
                raise invalid(
                    f"No such product: '{data['product']}'",
                    param=f"{dpath}[product]",
                    code="resource_missing",
                )
            price = objects.price(
                new_id("price_"), product["id"], currency, amount, now, active=False, tax_behavior=behavior
            )
            return price, str(product["name"])
        if product_data is None:
            raise missing_param(f"{dpath}[product_data]")
        price = objects.price(
            new_id("price_"), new_id("prod_"), currency, amount, now, active=False, tax_behavior=behavior
        )
        return price, product_data["name"]

    def line_items_list(
        self, sid: str, limit: int = 10, starting_after: str | None = None, ending_before: str | None = None
    ) -> Obj:
        items = self._store.line_items.get(sid, [])
        start = 0
        if starting_after:
            ids = [i["id"] for i in items]
            if starting_after not in ids:
                raise StripeError(
                    f"No such line item: '{starting_after}'", code="resource_missing", param="starting_after"
                )
            start = ids.index(starting_after) + 1
        end = len(items)
        if ending_before:
            ids = [i["id"] for i in items]
            if ending_before not in ids:
                raise StripeError(
                    f"No such line item: '{ending_before}'", code="resource_missing", param="ending_before"
                )
            end = ids.index(ending_before)
            start = max(0, end - limit)
        page = items[start:end][:limit]
        return objects.list_object(page, start + len(page) < end, f"/v1/checkout/sessions/{sid}/line_items")

    # --------------------------------------------------------------------- open, expire, complete

    def open_session(self, sid: str) -> Obj:
        """The session a payment attempt is for; one past its expiry is expired on the spot."""
        session = self._store.get_or_404(self._store.sessions, "checkout.session", sid)
        if session["status"] != "open":
            raise invalid(f"This Checkout Session is no longer open (status {session['status']}).")
        if session["expires_at"] <= self._clock.now():
            self._expire(session, HOSTED)
            raise invalid("This Checkout Session has expired.")
        return session

    def expire_session(self, sid: str, ctx: RequestContext) -> Obj:
        session = self._store.get_or_404(self._store.sessions, "checkout.session", sid)
        if session["status"] != "open":
            raise invalid(
                f'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session '
                f"has a status of {session['status']}."
            )
        self._expire(session, ctx)
        return session

    def expire_due(self, now: int) -> None:
        """Clock hook: expire every session still open at its `expires_at`."""
        heap = self._expiry_heap
        while heap and heap[0][0] <= now:
            _, sid = heapq.heappop(heap)
            session = self._store.sessions.get(sid)
            if session is not None and session["status"] == "open":
                self._expire(session, HOSTED)

    def _completed_customer(
        self, session: Obj, email: str | None, name: str | None, address: Obj, ctx: RequestContext
    ) -> str | None:
        """The session's customer once paid: made for `customer_creation=always`, or updated as
        `customer_update` asks with what the buyer entered."""
        cid = session["customer"]
        if cid is None:
            if session["customer_creation"] != "always":
                return None
            made = self._customers.create({"email": email, "name": name, "address": address}, ctx)
            return str(made["id"])
        changes: Obj = {}
        wanted = self._store.session_extra[session["id"]].get("customer_update") or {}
        if wanted.get("address") == "auto" and session["billing_address_collection"]:
            changes["address"] = {k: v for k, v in address.items() if v is not None}
        if wanted.get("name") == "auto" and name:
            changes["name"] = name
        # A customer deleted while its session was open has nothing left to update.
        if changes and self._customers.live(cid) is not None:
            self._customers.update(cid, changes, ctx)
        return str(cid)

    def _expire(self, session: Obj, ctx: RequestContext) -> None:
        store = self._store
        extra = store.session_extra[session["id"]]
        pi_id = extra.get("payment_intent")
        if pi_id:
            pi = store.payment_intents.by_id[pi_id]
            if pi["status"] not in ("succeeded", "canceled"):
                pi.update(
                    status="canceled",
                    canceled_at=self._clock.now(),
                    cancellation_reason="abandoned",
                    next_action=None,
                )
                store.challenges.pop(pi_id, None)
                self._emit("payment_intent.canceled", pi, ctx)
        session.update(status="expired", url=None)
        self._emit("checkout.session.expired", session, ctx)

    def complete(
        self,
        session: Obj,
        pi: Obj | None,
        email: str | None,
        name: str | None,
        address: Obj,
        *,
        paid: bool,
        ctx: RequestContext,
    ) -> None:
        """Close the session for its PaymentIntent; a bank debit completes unpaid and settles later.

        A manually captured card payment completes `unpaid`, as Stripe reports a hold not yet
        captured; capturing it makes the session `paid` (``Payments.capture``). Without a
        PaymentIntent (a total of 0, e.g. a 100 % promotion code) it is `no_payment_required`.
        """
        customer = self._completed_customer(session, email, name, address, ctx)
        if customer is not None:
            session["customer"] = customer
        if customer is not None and pi is not None:
            pi["customer"] = customer
            if pi["latest_charge"]:
                self._store.charges.by_id[pi["latest_charge"]]["customer"] = customer
        wanted = self._store.session_extra[session["id"]].get("discount")
        applied = self._applied(session, int(session["amount_subtotal"])) if wanted else None
        if applied is not None:
            self._discounts.redeem(applied)
        session.update(
            status="complete",
            payment_status="no_payment_required" if pi is None else "paid" if paid else "unpaid",
            payment_intent=None if pi is None else pi["id"],
            customer_details=objects.customer_details(email, name, address),
            url=None,
        )
        self._emit("checkout.session.completed", session, ctx)


def _check_total(total: int, currency: str) -> None:
    if total < minimum(currency):
        raise invalid(
            "The Checkout Session's total amount due must add up to at least "
            f"{format_plain(minimum(currency), currency)}",
            code="amount_too_small",
        )
    if total > MAXIMUM:
        raise invalid(
            f"The Checkout Session's total amount due must be no more than {format_plain(MAXIMUM, currency)}",
            code="amount_too_large",
        )


def _adjustable(raw: Obj | None, quantity: int, path: str) -> Obj | None:
    """Stripe's bounds for a buyer-adjustable quantity (defaults 0 and 99)."""
    if not raw or not raw["enabled"]:
        return None
    low = raw.get("minimum", 0)
    high = raw.get("maximum", 99)
    apath = f"{path}[adjustable_quantity]"
    if low > high:
        raise invalid(
            f"`{apath}[minimum]` must be less than or equal to `{apath}[maximum]`.",
            param=f"{apath}[minimum]",
        )
    if not low <= quantity <= high:
        raise invalid(
            f"`{path}[quantity]` must be between `{apath}[minimum]` ({low}) and `{apath}[maximum]` ({high}).",
            param=f"{path}[quantity]",
        )
    return {"enabled": True, "maximum": high, "minimum": low}


def _allocate(amount: int, weights: list[int]) -> list[int]:
    """Split `amount` over items in proportion to `weights`, whole minor units summing exactly."""
    total = sum(weights)
    if amount == 0 or total == 0:
        return [0] * len(weights)
    shares = [amount * w // total for w in weights]
    by_remainder = sorted(range(len(weights)), key=lambda i: -(amount * weights[i] % total))
    for i in by_remainder[: amount - sum(shares)]:
        shares[i] += 1
    return shares


def _set_quantity(item: Obj, quantity: int) -> None:
    subtotal = int(item["price"]["unit_amount"]) * quantity
    item.update(quantity=quantity, amount_subtotal=subtotal, amount_total=subtotal)


# Payment method types that can hold funds for a later capture (bank debits cannot).
_MANUAL_CAPTURE_METHODS = ("card",)


def _method_types(requested: list[str] | None, currency: str, capture: str) -> list[str]:
    manual = capture == "manual"
    if requested is None:
        debit = None if manual else {"eur": "sepa_debit", "usd": "us_bank_account"}.get(currency)
        return ["card", debit] if debit else ["card"]
    out: list[str] = []
    for i, method in enumerate(requested):
        if method not in SIMULATED_METHODS:
            raise invalid(
                f"The Stripe sandbox does not simulate the payment method type `{method}`.",
                param=f"payment_method_types[{i}]",
            )
        if manual and method not in _MANUAL_CAPTURE_METHODS:
            raise invalid(
                f"The payment method type `{method}` does not support "
                "`payment_intent_data[capture_method]=manual`.",
                param=f"payment_method_types[{i}]",
            )
        needed = {"sepa_debit": "eur", "us_bank_account": "usd"}.get(method)
        if needed and currency != needed:
            raise invalid(
                f"The currency provided ({currency}) is invalid for one or more payment method types on "
                f"this Checkout Session. The payment method type {method} only supports {needed}.",
                param=f"payment_method_types[{i}]",
            )
        if method not in out:
            out.append(method)
    return out
