"""Checkout Sessions: creation (line items, Prices, payment method types), expiry and completion.

The session's lifecycle lives here; paying for one is `payments`, which asks this module for an
open session and hands it back to be completed.
"""

from __future__ import annotations

import heapq

from . import objects
from .catalog import line_price
from .clock import Clock
from .errors import StripeError, invalid, missing_param
from .events import HOSTED, Emitter, RequestContext
from .forms import looks_like_email
from .ids import new_id, session_id
from .money import MAXIMUM, SUPPORTED, format_plain, minimum
from .objects import Obj
from .params import MAX_UNIT_AMOUNT, SIMULATED_METHODS
from .store import Store


class Checkout:
    """Sessions and their line items; expires open sessions as the clock passes."""

    def __init__(self, store: Store, clock: Clock, emitter: Emitter) -> None:
        self._store = store
        self._clock = clock
        self._emit = emitter.emit
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
        currency: str | None = None
        for i, raw in enumerate(raw_items):
            path = f"line_items[{i}]"
            price, description = self._line_price(raw, path, now)
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
            items.append(objects.line_item(new_id("li_"), price, quantity, description))
        assert currency is not None
        if "currency" in params and params["currency"].lower() != currency:
            raise invalid(
                f"The currency {params['currency']} does not match the line items' currency {currency}.",
                param="currency",
            )
        total = sum(int(item["amount_total"]) for item in items)
        if total < minimum(currency):
            raise invalid(
                "The Checkout Session's total amount due must add up to at least "
                f"{format_plain(minimum(currency), currency)}",
                code="amount_too_small",
            )
        if total > MAXIMUM:
            raise invalid(
                "The Checkout Session's total amount due must be no more than "
                f"{format_plain(MAXIMUM, currency)}",
                code="amount_too_large",
            )
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
        email = params.get("customer_email")
        if email is not None and not looks_like_email(email):
            raise invalid(f"Invalid email address: {email}", param="customer_email", code="email_invalid")
        methods = _method_types(params.get("payment_method_types"), currency)
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
        if params.get("submit_type"):
            session["submit_type"] = params["submit_type"]
        if params.get("billing_address_collection"):
            session["billing_address_collection"] = params["billing_address_collection"]
        if params.get("customer_creation"):
            session["customer_creation"] = params["customer_creation"]
        store = self._store
        store.sessions.add(session)
        store.line_items[sid] = items
        pid_data = params.get("payment_intent_data", {})
        store.session_extra[sid] = {
            "payment_intent": None,
            "pi_metadata": pid_data.get("metadata", {}),
            "pi_description": pid_data.get("description"),
            "receipt_email": pid_data.get("receipt_email"),
            # `manual` holds the card payment for `POST /v1/payment_intents/{id}/capture` (payments).
            "capture_method": pid_data.get("capture_method", "automatic"),
        }
        heapq.heappush(self._expiry_heap, (expires_at, sid))
        store.mark_dirty()
        return session

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
        if "product" in data:
            product = self._store.products.get(data["product"])
            if product is None:
                raise invalid(
                    f"No such product: '{data['product']}'",
                    param=f"{dpath}[product]",
                    code="resource_missing",
                )
            price = objects.price(new_id("price_"), product["id"], currency, amount, now, active=False)
            return price, str(product["name"])
        if product_data is None:
            raise missing_param(f"{dpath}[product_data]")
        price = objects.price(new_id("price_"), new_id("prod_"), currency, amount, now, active=False)
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
        pi: Obj,
        email: str | None,
        name: str | None,
        country: str | None,
        *,
        paid: bool,
        ctx: RequestContext,
    ) -> None:
        """Close the session for its PaymentIntent; a bank debit completes unpaid and settles later."""
        session.update(
            status="complete",
            payment_status="paid" if paid else "unpaid",
            payment_intent=pi["id"],
            customer_details=objects.customer_details(email, name, country),
            url=None,
        )
        self._emit("checkout.session.completed", session, ctx)


def _method_types(requested: list[str] | None, currency: str) -> list[str]:
    if requested is None:
        debit = {"eur": "sepa_debit", "usd": "us_bank_account"}.get(currency)
        return ["card", debit] if debit else ["card"]
    out: list[str] = []
    for i, method in enumerate(requested):
        if method not in SIMULATED_METHODS:
            raise invalid(
                f"The Stripe sandbox does not simulate the payment method type `{method}`.",
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
