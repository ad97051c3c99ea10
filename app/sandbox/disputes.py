"""Disputes: a chargeback opened on a charge, its funds withdrawn, then closed won or lost.

Only the dispute test card opens one (from `payments`); the control API closes it.
"""

from __future__ import annotations

from . import objects
from .balance import book
from .clock import Clock
from .errors import invalid
from .events import HOSTED, Emitter, RequestContext
from .ids import new_id
from .objects import Obj
from .store import Store


class Disputes:
    """Opens and closes disputes, booking the withdrawal and (when won) the reinstatement."""

    def __init__(self, store: Store, clock: Clock, emitter: Emitter) -> None:
        self._store = store
        self._clock = clock
        self._emit = emitter.emit

    def open(self, ch: Obj, brand: str, ctx: RequestContext) -> Obj:
        now = self._clock.now()
        dispute_id = new_id("du_")
        withdrawal = book(
            self._store,
            category="dispute",
            created=now,
            amount=-ch["amount"],
            currency=ch["currency"],
            source=dispute_id,
            description="Chargeback withdrawal",
        )
        dispute = objects.dispute(
            dispute_id=dispute_id,
            created=now,
            amount=ch["amount"],
            currency=ch["currency"],
            charge_id=ch["id"],
            pi_id=ch["payment_intent"],
            brand=brand,
            balance_transactions=[],
        )
        self._store.disputes.add(dispute)
        ch["disputed"] = True
        self._emit("charge.dispute.created", dispute, ctx)
        # Stripe withdraws the funds just after opening, so `created` shows no transactions yet.
        dispute["balance_transactions"] = [withdrawal]
        self._emit("charge.dispute.funds_withdrawn", dispute, ctx)
        return dispute

    def close(self, dispute_id: str, won: bool, ctx: RequestContext = HOSTED) -> Obj:
        dispute = self._store.get_or_404(self._store.disputes, "dispute", dispute_id)
        if dispute["status"] in ("won", "lost"):
            raise invalid(f"Dispute {dispute_id} is already closed ({dispute['status']}).")
        previous = {"status": dispute["status"]}
        dispute.update(status="won" if won else "lost", is_charge_refundable=False)
        self._emit("charge.dispute.closed", dispute, ctx, previous)
        if won:
            reinstated = book(
                self._store,
                category="dispute_reversal",
                created=self._clock.now(),
                amount=dispute["amount"],
                currency=dispute["currency"],
                source=dispute["id"],
                description="Chargeback reversal",
            )
            dispute["balance_transactions"] = [*dispute["balance_transactions"], reinstated]
            self._emit("charge.dispute.funds_reinstated", dispute, ctx)
        return dispute
