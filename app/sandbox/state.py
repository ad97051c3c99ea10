"""`SandboxState`, the one object the routes and in-process tests use: the store plus every seam.

The work is split along its seams: `store` (data, state file), `clock`, `events`, `idempotency`,
`checkout`, `payments`, `refunds`, `disputes` and `balance` (booking balance transactions). This
module wires them together and binds each public operation to the seam that owns it, so callers
keep one vocabulary (`state.create_session`, `state.sessions`, ...) without knowing the split.

All mutations are synchronous methods (no awaits inside), so each runs atomically on the event
loop; the public async wrappers also take `lock` so multi-step callers can group work.
"""

from __future__ import annotations

import asyncio

from .catalog import Catalog
from .checkout import Checkout
from .clock import Clock
from .config import SandboxConfig
from .customers import Customers
from .discounts import Discounts
from .disputes import Disputes
from .events import API_VERSION, HOSTED, Emitter, RequestContext
from .idempotency import Idempotency
from .objects import Obj
from .payments import CardInput, Payments, PayResult
from .refunds import Refunds
from .store import Collection, Store
from .tax import Tax

__all__ = [
    "API_VERSION",
    "HOSTED",
    "CardInput",
    "Collection",
    "Obj",
    "PayResult",
    "RequestContext",
    "SandboxState",
]


class SandboxState(Store):
    """The sandbox's data (inherited from `Store`) and its operations; also the Python control API.

    It is a store rather than holding one so that `state.sessions`, `state.clock_offset` and the
    other data stay where routes and tests read them, with nothing forwarded by hand.
    """

    def __init__(self, config: SandboxConfig) -> None:
        super().__init__(config)
        self.lock = asyncio.Lock()
        clock = Clock(self)
        emitter = Emitter(self, clock)
        discounts = Discounts(self, clock, emitter)
        customers = Customers(self, clock, emitter)
        catalog = Catalog(self, clock, emitter)
        tax = Tax(self, clock, emitter)
        checkout = Checkout(self, clock, emitter, discounts, customers, tax)
        disputes = Disputes(self, clock, emitter)
        payments = Payments(self, clock, emitter, checkout, disputes)
        refunds = Refunds(self, clock, emitter)
        idempotency = Idempotency(self, clock)
        # A tick expires sessions before it settles debits, as it always has.
        clock.on_due(checkout.expire_due)
        clock.on_due(payments.settle_due)
        clock.on_due(discounts.refresh_all)
        clock.on_due(payments.expire_holds)

        self.now = clock.now
        self.tick = clock.tick
        self.advance_clock = clock.advance
        self.run_ticker = clock.run

        self.endpoints = emitter.endpoints
        self.on_event = emitter.on_event
        self.emit = emitter.emit
        self.event_view = emitter.event_view
        self.delivery_succeeded = emitter.delivery_succeeded
        self.settle_delivery = emitter.settle_delivery

        self.idempotent_lookup = idempotency.lookup
        self.idempotent_store = idempotency.remember

        # Products and Prices; Checkout reads a line item's Price with `catalog.line_price`.
        self.register_price = catalog.register_price
        self.create_product = catalog.create_product
        self.product = catalog.product
        self.update_product = catalog.update_product
        self.create_price = catalog.create_price
        self.price = catalog.price
        self.update_price = catalog.update_price

        self.create_session = checkout.create_session
        self.line_items_list = checkout.line_items_list
        self.expire_session = checkout.expire_session
        self.update_session = checkout.update_session
        self.set_quantities = checkout.set_quantities
        self.set_promotion_code = checkout.set_promotion_code
        self.known_email = checkout.known_email
        self.tax_location = checkout.tax_location

        self.validate_card = payments.validate_card
        self.pay_with_card = payments.pay_with_card
        self.finish_challenge = payments.finish_challenge
        self.pay_with_bank = payments.pay_with_bank
        self.pay_session = payments.pay_session
        self.capture_payment_intent = payments.capture
        self.cancel_payment_intent = payments.cancel

        # Coupons and promotion codes; Checkout prices a discount with `apply_discount` and counts
        # it with `redeem_discount` when the session completes.
        self.create_coupon = discounts.create_coupon
        self.update_coupon = discounts.update_coupon
        self.coupon = discounts.coupon
        self.create_promotion_code = discounts.create_promotion_code
        self.update_promotion_code = discounts.update_promotion_code
        self.promotion_code = discounts.promotion_code
        self.find_promotion_code = discounts.find_code
        self.promotion_code_error = discounts.code_error
        self.apply_discount = discounts.apply
        self.redeem_discount = discounts.redeem

        # Customers; Checkout attaches one by id (`customer`) or makes one with `create_customer`.
        self.create_customer = customers.create
        self.customer = customers.get
        self.update_customer = customers.update
        self.delete_customer = customers.delete

        # Tax Rates; Checkout taxes a line with `tax_for_rates` and asks `automatic_tax_for`.
        self.create_tax_rate = tax.create
        self.tax_rate = tax.get
        self.update_tax_rate = tax.update
        self.tax_for_rates = tax.for_rates
        self.automatic_tax_for = tax.automatic_tax_for

        self.create_refund = refunds.create
        self.cancel_refund = refunds.cancel
        self.close_dispute = disputes.close
