"""Refunds: full or partial refunds of a succeeded charge, named by PaymentIntent or charge."""

from __future__ import annotations

from . import objects
from .balance import book
from .clock import Clock
from .errors import invalid
from .events import Emitter, RequestContext
from .ids import new_id
from .money import format_plain
from .objects import Obj
from .store import Store, snapshot


class Refunds:
    """Checks a refund against what is left on the charge, books it and follows up like Stripe."""

    def __init__(self, store: Store, clock: Clock, emitter: Emitter) -> None:
        self._store = store
        self._clock = clock
        self._emit = emitter.emit

    def create(self, params: Obj, ctx: RequestContext) -> Obj:
        ch = self._target(params)
        if ch["disputed"]:
            raise invalid(
                f"Charge {ch['id']} has been charged back; cannot issue a refund.", code="charge_disputed"
            )
        remaining = ch["amount_captured"] - ch["amount_refunded"]
        if remaining <= 0:
            raise invalid(f"Charge {ch['id']} has already been refunded.", code="charge_already_refunded")
        if "currency" in params and params["currency"].lower() != ch["currency"]:
            raise invalid("The refund currency must match the charge currency.", param="currency")
        amount = params.get("amount", remaining)
        if amount > remaining:
            raise invalid(
                f"Refund amount ({format_plain(amount, ch['currency'])}) is greater than unrefunded amount "
                f"on charge ({format_plain(remaining, ch['currency'])})",
                param="amount",
                code="amount_too_large",
            )
        method = ch["payment_method_details"]["type"]
        refund_id = new_id("re_")
        txn = book(
            self._store,
            category="refund",
            created=self._clock.now(),
            amount=-amount,
            currency=ch["currency"],
            source=refund_id,
            description="REFUND FOR CHARGE",
        )
        refund = objects.refund(
            refund_id=refund_id,
            created=self._clock.now(),
            amount=amount,
            currency=ch["currency"],
            charge_id=ch["id"],
            pi_id=ch["payment_intent"],
            reason=params.get("reason"),
            metadata=params.get("metadata", {}),
            method_type=method,
            txn_id=txn["id"],
            pm_id=ch["payment_method"],
        )
        self._store.refunds.add(refund)
        previous = {"amount_refunded": ch["amount_refunded"], "refunded": ch["refunded"]}
        ch["amount_refunded"] += amount
        ch["refunded"] = ch["amount_refunded"] == ch["amount_captured"]
        ch["refunds"]["data"].insert(0, refund)
        if not ch["refunded"]:
            previous.pop("refunded")
        self._emit("charge.refunded", ch, ctx, previous)
        self._emit("refund.created", refund, ctx)
        # Stripe follows up once the acquirer reference (card) or the bank settlement is known.
        if method == "card":
            before = snapshot(refund["destination_details"])
            refund["destination_details"]["card"].update(
                reference=str(int(objects.fingerprint(refund["id"]), 16)).zfill(23)[:23],
                reference_status="available",
                reference_type="acquirer_reference_number",
            )
            self._emit("refund.updated", refund, ctx, {"destination_details": before})
        else:
            refund["status"] = "succeeded"
            self._emit("refund.updated", refund, ctx, {"status": "pending"})
        return refund

    def cancel(self, refund_id: str, ctx: RequestContext) -> Obj:
        """Only a refund waiting on the customer (`requires_action`) can be canceled; the sandbox's
        card and bank refunds never wait, so this answers Stripe's refusal for every other status."""
        refund = self._store.get_or_404(self._store.refunds, "refund", refund_id)
        if refund["status"] != "requires_action":
            raise invalid(
                f"You cannot cancel this refund because it has a status of {refund['status']}. Only "
                "refunds with a status of requires_action can be canceled.",
            )
        refund["status"] = "canceled"
        self._emit("refund.updated", refund, ctx, {"status": "requires_action"})
        return refund

    def _target(self, params: Obj) -> Obj:
        """The succeeded charge a refund names, by `charge`, by `payment_intent`, or both agreeing."""
        charges = self._store.charges
        pi_id = params.get("payment_intent")
        ch_id = params.get("charge")
        if not pi_id and not ch_id:
            raise invalid(
                "One of the following params should be provided for this request: payment_intent or charge.",
                code="parameter_missing",
            )
        ch: Obj | None = None
        if ch_id:
            ch = charges.get(ch_id)
            if ch is None:
                raise invalid(f"No such charge: '{ch_id}'", param="charge", code="resource_missing")
        if pi_id:
            pi = self._store.payment_intents.get(pi_id)
            if pi is None:
                raise invalid(
                    f"No such payment_intent: '{pi_id}'", param="payment_intent", code="resource_missing"
                )
            if ch is not None and ch["payment_intent"] != pi_id:
                raise invalid(f"Charge {ch['id']} does not belong to PaymentIntent {pi_id}.", param="charge")
            if ch is None:
                latest = pi.get("latest_charge")
                ch = charges.get(latest) if latest else None
                if ch is None or pi["status"] != "succeeded":
                    raise invalid(
                        f"This PaymentIntent ({pi_id}) does not have a successful charge to refund.",
                        param="payment_intent",
                    )
        assert ch is not None
        if ch["status"] != "succeeded":
            raise invalid(f"Charge {ch['id']} has not succeeded and cannot be refunded.", param="charge")
        return ch
