"""Customers: create, retrieve, update, delete, list and search, as Stripe keeps a returning buyer.

A deleted customer is kept as Stripe's stub (`{"id", "object": "customer", "deleted": true}`):
retrieving it answers the stub, while updating, deleting again, or naming it on a Checkout
Session or promotion code is `resource_missing`, and lists and searches leave it out.

Checkout attaches one to a session (`customer`) or makes one (`customer_creation=always`) through
`create` and `customer`, so a session's customer is the same object the API serves.
"""

from __future__ import annotations

import secrets

from . import objects
from .clock import Clock
from .errors import invalid, no_such
from .events import Emitter, RequestContext
from .forms import apply_metadata, looks_like_email
from .ids import new_id
from .objects import Obj
from .store import Store

# Fields an update sets (or, given "", clears) as they come.
_PLAIN = ("email", "name", "phone", "description", "preferred_locales", "tax_exempt", "invoice_prefix")


def _checked(params: Obj) -> Obj:
    """Stripe's checks on a customer's email and address; returns the params with the country upper-cased."""
    email = params.get("email")
    if email is not None and not looks_like_email(email):
        raise invalid(f"Invalid email address: {email}", param="email", code="email_invalid")
    out = dict(params)
    for field in ("address", "shipping"):
        value = out.get(field)
        address = (value.get("address") if field == "shipping" else value) if value else None
        if address and "country" in address:
            country = address["country"].upper()
            if not (len(country) == 2 and country.isalpha()):
                path = f"{field}[address][country]" if field == "shipping" else f"{field}[country]"
                raise invalid(
                    f"Country '{address['country']}' is unknown. Try using a 2-character alphanumeric "
                    "country code instead, such as 'US', 'EG', or 'GB'.",
                    param=path,
                )
            address["country"] = country
    if out.get("tax_exempt") == "":
        out["tax_exempt"] = None
    return out


def _shipping(value: Obj | None) -> Obj | None:
    if not value:
        return None
    return {
        "address": objects.address() | (value.get("address") or {}),
        "name": value["name"],
        "phone": value.get("phone"),
    }


class Customers:
    """The sandbox's customers; every change emits `customer.created` / `customer.updated`."""

    def __init__(self, store: Store, clock: Clock, emitter: Emitter) -> None:
        self._store = store
        self._clock = clock
        self._emit = emitter.emit

    def create(self, params: Obj, ctx: RequestContext) -> Obj:
        params = _checked(params)
        customer = objects.customer(
            new_id("cus_", 14),
            self._clock.now(),
            params,
            params.get("invoice_prefix") or secrets.token_hex(4).upper(),
        )
        customer["shipping"] = _shipping(params.get("shipping"))
        self._store.customers.add(customer)
        self._emit("customer.created", customer, ctx)
        return customer

    def get(self, customer_id: str) -> Obj:
        """What retrieving answers: the customer, or the stub of a deleted one."""
        return self._store.get_or_404(self._store.customers, "customer", customer_id)

    def live(self, customer_id: str) -> Obj | None:
        """The customer unless it does not exist or was deleted (what other objects may name)."""
        return self._store.customers.live(customer_id)

    def _live_or_404(self, customer_id: str) -> Obj:
        customer = self.live(customer_id)
        if customer is None:
            raise no_such("customer", customer_id)
        return customer

    def delete(self, customer_id: str, ctx: RequestContext) -> Obj:
        """Stripe's delete: the stub replaces the customer, `customer.deleted` carries its last state."""
        customer = self._live_or_404(customer_id)
        stub: Obj = {"id": customer_id, "object": "customer", "deleted": True}
        self._store.customers.by_id[customer_id] = stub
        self._emit("customer.deleted", customer, ctx)
        self._store.mark_dirty()
        return stub

    def update(self, customer_id: str, params: Obj, ctx: RequestContext) -> Obj:
        customer = self._live_or_404(customer_id)
        params = _checked(params)
        previous: Obj = {}
        changes: Obj = {k: params[k] for k in _PLAIN if k in params}
        if "tax_exempt" in changes and changes["tax_exempt"] is None:
            changes["tax_exempt"] = "none"
        if "preferred_locales" in changes and changes["preferred_locales"] is None:
            changes["preferred_locales"] = []
        if "address" in params:
            changes["address"] = objects.address() | params["address"] if params["address"] else None
        if "shipping" in params:
            changes["shipping"] = _shipping(params["shipping"])
        if "metadata" in params:
            changes["metadata"] = apply_metadata(customer["metadata"], params["metadata"])
        for key, value in changes.items():
            if customer[key] != value:
                previous[key] = customer[key]
                customer[key] = value
        if previous:
            self._emit("customer.updated", customer, ctx, previous)
        self._store.mark_dirty()
        return customer
