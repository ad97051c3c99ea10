"""Payments: PaymentIntents, card and bank-debit attempts, 3-D Secure challenges, capture, settling.

A card attempt either declines, waits for a 3-D Secure challenge, or captures and completes the
session at once; a bank debit completes the session unpaid and settles when the clock reaches it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from . import objects
from .balance import book
from .cards import AUTHENTICATION_FAILED, Decline, bank_outcome, lookup, luhn_ok, normalize_number
from .checkout import Checkout
from .clock import Clock
from .disputes import Disputes
from .errors import invalid, no_such
from .events import HOSTED, Emitter, RequestContext
from .forms import apply_metadata, looks_like_email
from .ids import new_id
from .objects import Obj
from .store import Store

# Stripe releases a card authorization left uncaptured this long.
HOLD_SECONDS = 7 * 24 * 3600


@dataclass
class PayResult:
    """Outcome of a payment attempt on the hosted page or the control API."""

    status: str  # "succeeded", "processing", "declined", "requires_action", "invalid"
    session: Obj
    message: str | None = None
    field_errors: dict[str, str] = field(default_factory=dict)
    payment_intent: str | None = None
    code: str | None = None
    decline_code: str | None = None

    def as_dict(self) -> Obj:
        return {
            "status": self.status,
            "message": self.message,
            "field_errors": self.field_errors,
            "payment_intent": self.payment_intent,
            "code": self.code,
            "decline_code": self.decline_code,
            "session": self.session,
        }


@dataclass
class CardInput:
    number: str
    exp_month: int
    exp_year: int
    cvc: str
    name: str | None = None


class Payments:
    """Pays Checkout Sessions; opens a dispute when the test card asks for one."""

    def __init__(
        self, store: Store, clock: Clock, emitter: Emitter, checkout: Checkout, disputes: Disputes
    ) -> None:
        self._store = store
        self._clock = clock
        self._emit = emitter.emit
        self._checkout = checkout
        self._disputes = disputes
        # Held (manual-capture) PaymentIntents; rebuilt from the store, so never persisted.
        self._holds = {pi["id"] for pi in store.payment_intents.dump() if pi["status"] == "requires_capture"}

    # ------------------------------------------------------------------------------ cards

    def validate_card(
        self, number: str, exp_month: str, exp_year: str, cvc: str
    ) -> tuple[CardInput | None, dict[str, str]]:
        """Client-side style checks Checkout performs before anything reaches Stripe."""
        errors: dict[str, str] = {}
        digits = normalize_number(number)
        if not digits.isdigit() or not 12 <= len(digits) <= 19 or not luhn_ok(digits):
            errors["card_number"] = "Your card number is invalid."
        month = int(exp_month) if exp_month.strip().isdigit() else 0
        year = int(exp_year) if exp_year.strip().isdigit() else -1
        if year >= 0 and year < 100:
            year += 2000
        if not 1 <= month <= 12 or year < 0:
            errors["expiry"] = "Your card's expiration date is incomplete."
        else:
            current = time.gmtime(self._clock.now())
            if (year, month) < (current.tm_year, current.tm_mon):
                errors["expiry"] = "Your card's expiration year is in the past."
        if not (cvc.isdigit() and len(cvc) in (3, 4)):
            errors["cvc"] = "Your card's security code is incomplete."
        if errors:
            return None, errors
        return CardInput(digits, month, year, cvc), {}

    def pay_with_card(
        self,
        sid: str,
        card: CardInput,
        *,
        email: str | None,
        name: str | None,
        address: Obj | None = None,
        ctx: RequestContext = HOSTED,
    ) -> PayResult:
        session = self._checkout.open_session(sid)
        email = email or self._checkout.known_email(session)
        if not email or not looks_like_email(email):
            return PayResult("invalid", session, field_errors={"email": "Your email address is invalid."})
        test_card = lookup(card.number)
        if session["amount_total"] == 0:
            return self._complete_free(
                session, email, name, address or objects.address(test_card.country), ctx
            )
        pi = self._ensure_pi(session, "card", ctx)
        facts: Obj = {
            "session": sid,
            "number": card.number,
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
            "email": email,
            "name": name,
            "address": address or objects.address(test_card.country),
        }
        if test_card.three_d_secure:
            pi.update(
                status="requires_action",
                payment_method=new_id("pm_"),
                next_action={
                    "type": "use_stripe_sdk",
                    "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": ""},
                },
            )
            self._store.challenges[pi["id"]] = facts
            self._emit("payment_intent.requires_action", pi, ctx)
            self._store.mark_dirty()
            return PayResult("requires_action", session, payment_intent=pi["id"])
        return self._charge_card(session, pi, facts, ctx, three_d_secure=None)

    def finish_challenge(
        self, sid: str, pi_id: str, authenticated: bool, ctx: RequestContext = HOSTED
    ) -> PayResult:
        """The 3-D Secure page's Complete / Fail buttons."""
        session = self._checkout.open_session(sid)
        challenges = self._store.challenges
        facts = challenges.get(pi_id)
        if facts is None or facts["session"] != sid:
            raise no_such("payment_intent", pi_id)
        del challenges[pi_id]
        pi = self._store.payment_intents.by_id[pi_id]
        if not authenticated:
            decline = AUTHENTICATION_FAILED
            pi.update(
                status="requires_payment_method",
                next_action=None,
                payment_method=None,
                last_payment_error=_payment_error(decline, None, "invalid_request_error"),
            )
            self._emit("payment_intent.payment_failed", pi, ctx)
            return PayResult(
                "declined", session, message=decline.message, payment_intent=pi_id, code=decline.code
            )
        tds = {
            "authentication_flow": "challenge",
            "electronic_commerce_indicator": "05",
            "exemption_indicator": None,
            "result": "authenticated",
            "result_reason": None,
            "transaction_id": new_id("", 32),
            "version": "2.2.0",
        }
        pi["next_action"] = None
        return self._charge_card(session, pi, facts, ctx, three_d_secure=tds)

    def _charge_card(
        self, session: Obj, pi: Obj, facts: Obj, ctx: RequestContext, three_d_secure: Obj | None
    ) -> PayResult:
        number = facts["number"]
        test_card = lookup(number)
        pm_id = pi.get("payment_method") or new_id("pm_")
        details = objects.card_details(
            brand=test_card.brand,
            last4=number[-4:],
            exp_month=facts["exp_month"],
            exp_year=facts["exp_year"],
            country=test_card.country,
            funding=test_card.funding,
            number=number,
            cvc_check="fail" if test_card.decline and test_card.decline.code == "incorrect_cvc" else "pass",
            three_d_secure=three_d_secure,
        )
        ch = self._new_charge(
            "ch_",
            pi,
            pm_id=pm_id,
            details=details,
            email=facts["email"],
            name=facts["name"],
            address=facts["address"],
        )
        decline = test_card.decline
        if decline is not None:
            ch.update(
                status="failed",
                failure_code=decline.code,
                failure_message=decline.message,
                outcome=objects.outcome_declined(decline.decline_code),
            )
            pi.update(
                status="requires_payment_method",
                payment_method=None,
                latest_charge=ch["id"],
                last_payment_error=_payment_error(decline, ch["id"], "card_error"),
            )
            self._emit("charge.failed", ch, ctx)
            self._emit("payment_intent.payment_failed", pi, ctx)
            return PayResult(
                "declined",
                session,
                message=decline.message,
                payment_intent=pi["id"],
                code=decline.code,
                decline_code=decline.decline_code,
            )
        held = pi["capture_method"] == "manual"
        if held:
            self._authorize(ch, pi, ctx)
        else:
            self._capture(ch, pi, ctx)
        # A held payment completes the session unpaid: its funds arrive only when captured.
        self._checkout.complete(
            session, pi, facts["email"], facts["name"], facts["address"], paid=not held, ctx=ctx
        )
        if test_card.dispute:
            self._disputes.open(ch, test_card.brand, ctx)
        return PayResult("succeeded", session, payment_intent=pi["id"])

    def _complete_free(
        self, session: Obj, email: str, name: str | None, address: Obj, ctx: RequestContext
    ) -> PayResult:
        """Nothing to pay (a 100 % discount): as Stripe, no PaymentIntent, `no_payment_required`."""
        self._checkout.complete(session, None, email, name, address, paid=True, ctx=ctx)
        return PayResult("succeeded", session)

    # ---------------------------------------------------------------- intents, charges, capture

    def _ensure_pi(self, session: Obj, method: str, ctx: RequestContext) -> Obj:
        """Stripe creates the PaymentIntent on the first confirm and reuses it for retries."""
        extra = self._store.session_extra[session["id"]]
        pi_id = extra.get("payment_intent")
        if pi_id:
            pi = self._store.payment_intents.by_id[pi_id]
            pi["payment_method_types"] = [method]
            return pi
        pi = objects.payment_intent(
            pi_id=new_id("pi_"),
            created=self._clock.now(),
            amount=session["amount_total"],
            currency=session["currency"],
            method_type=method,
            description=extra.get("pi_description"),
            metadata=dict(extra.get("pi_metadata") or {}),
            receipt_email=extra.get("receipt_email"),
        )
        pi.update(
            customer=session["customer"],
            capture_method=extra.get("capture_method", "automatic"),
            statement_descriptor=extra.get("statement_descriptor"),
            statement_descriptor_suffix=extra.get("statement_descriptor_suffix"),
        )
        self._store.payment_intents.add(pi)
        extra["payment_intent"] = pi["id"]
        self._emit("payment_intent.created", pi, ctx)
        return pi

    def _new_charge(
        self,
        prefix: str,
        pi: Obj,
        *,
        pm_id: str,
        details: Obj,
        email: str | None,
        name: str | None,
        address: Obj,
    ) -> Obj:
        """A charge for the PaymentIntent's full amount, recorded before its outcome is known."""
        descriptor = pi["statement_descriptor"] or _STATEMENT_DESCRIPTOR
        if pi["statement_descriptor_suffix"]:
            descriptor = f"{_STATEMENT_DESCRIPTOR}* {pi['statement_descriptor_suffix']}"
        ch = objects.charge(
            charge_id=new_id(prefix),
            created=self._clock.now(),
            amount=pi["amount"],
            currency=pi["currency"],
            pi_id=pi["id"],
            pm_id=pm_id,
            details=details,
            billing_email=email,
            billing_name=name,
            billing_address=address,
            description=pi["description"],
            metadata=dict(pi["metadata"]),
            receipt_url=f"{self._store.config.public_url.rstrip('/')}/receipts/{pi['id']}",
            statement_descriptor=descriptor[:22].upper(),
        )
        return self._store.charges.add(ch)

    def _capture(self, ch: Obj, pi: Obj, ctx: RequestContext) -> None:
        self._settle(ch, pi, ch["amount"])
        ch["outcome"] = objects.outcome_authorized()
        self._emit("charge.succeeded", ch, ctx)
        self._emit("payment_intent.succeeded", pi, ctx)

    def _settle(self, ch: Obj, pi: Obj, amount: int) -> None:
        """Capture `amount` of the charge: book it and mark charge and PaymentIntent succeeded."""
        txn = book(
            self._store,
            category="charge",
            created=self._clock.now(),
            amount=amount,
            currency=ch["currency"],
            source=ch["id"],
            description=ch["description"],
        )
        ch.update(
            status="succeeded",
            paid=True,
            captured=True,
            amount_captured=amount,
            balance_transaction=txn["id"],
        )
        pi.update(
            status="succeeded",
            amount_capturable=0,
            amount_received=amount,
            latest_charge=ch["id"],
            payment_method=ch["payment_method"],
            last_payment_error=None,
            next_action=None,
            processing=None,
        )

    def _authorize(self, ch: Obj, pi: Obj, ctx: RequestContext) -> None:
        """A manual-capture card payment: the funds are held, nothing is booked until capture."""
        ch.update(status="succeeded", paid=True, captured=False, outcome=objects.outcome_authorized())
        pi.update(
            status="requires_capture",
            amount_capturable=pi["amount"],
            latest_charge=ch["id"],
            payment_method=ch["payment_method"],
            last_payment_error=None,
            next_action=None,
        )
        self._holds.add(pi["id"])
        self._emit("charge.succeeded", ch, ctx)
        self._emit("payment_intent.amount_capturable_updated", pi, ctx)

    def expire_holds(self, now: int) -> None:
        """Clock hook: Stripe cancels a card authorization left uncaptured for 7 days."""
        charges, intents = self._store.charges.by_id, self._store.payment_intents.by_id
        due = [
            p for p in self._holds if charges[intents[p]["latest_charge"]]["created"] + HOLD_SECONDS <= now
        ]
        for pi_id in due:
            self._release(intents[pi_id], "automatic", HOSTED)

    def _release(self, pi: Obj, reason: str | None, ctx: RequestContext) -> None:
        """End a PaymentIntent unpaid; a held charge's authorization is released (no Refund object)."""
        if pi["status"] == "requires_capture":
            ch = self._store.charges.by_id[pi["latest_charge"]]
            ch.update(refunded=True, amount_refunded=ch["amount"])
        self._holds.discard(pi["id"])
        self._store.challenges.pop(pi["id"], None)
        pi.update(
            status="canceled",
            amount_capturable=0,
            canceled_at=self._clock.now(),
            cancellation_reason=reason,
            next_action=None,
        )
        self._emit("payment_intent.canceled", pi, ctx)

    def capture(self, pi_id: str, params: Obj, ctx: RequestContext) -> Obj:
        """`POST /v1/payment_intents/{id}/capture`: all or part of a held amount."""
        store = self._store
        pi = store.get_or_404(store.payment_intents, "payment_intent", pi_id)
        if pi["status"] != "requires_capture":
            raise invalid(
                f"This PaymentIntent could not be captured because it has a status of {pi['status']}. "
                "Only a PaymentIntent with one of the following statuses may be captured: requires_capture.",
                code="payment_intent_unexpected_state",
            )
        capturable: int = pi["amount_capturable"]
        amount: int = params.get("amount_to_capture", capturable)
        if amount > capturable:
            raise invalid(
                f"The amount to capture ({amount}) must be less than or equal to the amount capturable "
                f"({capturable}).",
                param="amount_to_capture",
                code="amount_too_large",
            )
        ch = store.charges.by_id[pi["latest_charge"]]
        for name in ("statement_descriptor", "statement_descriptor_suffix"):
            if name in params:
                pi[name] = ch[name] = params[name]
        if "metadata" in params:
            pi["metadata"] = apply_metadata(pi["metadata"], params["metadata"])
        # Since 2025-03-31.basil a partial capture releases the rest without a Refund object.
        self._settle(ch, pi, amount)
        self._holds.discard(pi_id)
        session = self._session_of(pi_id)
        if session is not None and session["payment_status"] == "unpaid":
            # Held funds are now the account's: Stripe reports the session paid (and sends no
            # checkout.session.* event for it; a shop learns it by retrieving the session).
            session["payment_status"] = "paid"
            store.mark_dirty()
        self._emit("charge.captured", ch, ctx)
        self._emit("payment_intent.succeeded", pi, ctx)
        return pi

    def cancel(self, pi_id: str, params: Obj, ctx: RequestContext) -> Obj:
        """`POST /v1/payment_intents/{id}/cancel`: release a hold, or end an unpaid attempt."""
        store = self._store
        pi = store.get_or_404(store.payment_intents, "payment_intent", pi_id)
        status = pi["status"]
        if status not in _CANCELABLE:
            allowed = ", ".join(_CANCELABLE)
            raise invalid(
                f"You cannot cancel this PaymentIntent because it has a status of {status}. Only a "
                f"PaymentIntent with one of the following statuses may be canceled: {allowed}.",
                code="payment_intent_unexpected_state",
            )
        session = self._session_of(pi_id)
        if session is not None and session["status"] == "open":
            raise invalid(
                "You cannot cancel this PaymentIntent because it belongs to an open Checkout Session. "
                f"Expire the Checkout Session ({session['id']}) instead.",
                code="payment_intent_unexpected_state",
            )
        self._release(pi, params.get("cancellation_reason"), ctx)
        return pi

    def _session_of(self, pi_id: str) -> Obj | None:
        """The Checkout Session whose payment this PaymentIntent is, if any."""
        store = self._store
        return next(
            (
                s
                for s in store.sessions.by_id.values()
                if store.session_extra[s["id"]].get("payment_intent") == pi_id
            ),
            None,
        )

    # ----------------------------------------------------------------------------- bank debits

    def pay_with_bank(
        self,
        sid: str,
        account: str,
        *,
        email: str | None,
        name: str | None,
        address: Obj | None = None,
        ctx: RequestContext = HOSTED,
    ) -> PayResult:
        """A delayed-notification debit: the session completes unpaid and settles later."""
        session = self._checkout.open_session(sid)
        email = email or self._checkout.known_email(session)
        if not email or not looks_like_email(email):
            return PayResult("invalid", session, field_errors={"email": "Your email address is invalid."})
        if session["amount_total"] == 0:
            return self._complete_free(session, email, name, address or objects.address("US"), ctx)
        outcome = bank_outcome(account, session["currency"])
        if outcome is None or outcome.method not in session["payment_method_types"]:
            label = "IBAN" if session["currency"] == "eur" else "account number"
            return PayResult("invalid", session, field_errors={"account": f"Your {label} is invalid."})
        normalized = account.replace(" ", "").upper()
        pi = self._ensure_pi(session, outcome.method, ctx)
        pm_id = new_id("pm_")
        details = objects.bank_details(outcome.method, normalized, new_id("mandate_"))
        country = normalized[:2] if outcome.method == "sepa_debit" else "US"
        address = address or objects.address(country)
        ch = self._new_charge(
            "py_", pi, pm_id=pm_id, details=details, email=email, name=name, address=address
        )
        pi.update(status="processing", payment_method=pm_id, latest_charge=ch["id"], last_payment_error=None)
        self._emit("payment_intent.processing", pi, ctx)
        self._emit("charge.pending", ch, ctx)
        self._checkout.complete(session, pi, email, name, address, paid=False, ctx=ctx)
        self._store.pending_debits.append(
            {
                "session": sid,
                "charge": ch["id"],
                "payment_intent": pi["id"],
                "resolve_at": self._clock.now() + int(self._store.config.async_payment_delay),
                "succeeds": outcome.succeeds,
                "failure_code": outcome.failure_code,
                "failure_message": outcome.failure_message,
            }
        )
        self._store.mark_dirty()
        return PayResult("processing", session, payment_intent=pi["id"])

    def settle_due(self, now: int) -> None:
        """Clock hook: settle every bank debit whose `resolve_at` has come."""
        store = self._store
        due = [d for d in store.pending_debits if d["resolve_at"] <= now]
        if due:
            store.pending_debits = [d for d in store.pending_debits if d["resolve_at"] > now]
            for debit in due:
                self._settle_debit(debit)

    def _settle_debit(self, debit: Obj) -> None:
        store = self._store
        session = store.sessions.by_id[debit["session"]]
        ch = store.charges.by_id[debit["charge"]]
        pi = store.payment_intents.by_id[debit["payment_intent"]]
        if debit["succeeds"]:
            self._capture(ch, pi, HOSTED)
            previous = {"payment_status": session["payment_status"]}
            session["payment_status"] = "paid"
            self._emit("checkout.session.async_payment_succeeded", session, HOSTED, previous)
            return
        ch.update(
            status="failed",
            failure_code=debit["failure_code"],
            failure_message=debit["failure_message"],
            outcome={
                **objects.outcome_declined(None),
                "type": "invalid",
                "network_status": None,
                "seller_message": debit["failure_message"],
            },
        )
        pi.update(
            status="requires_payment_method",
            payment_method=None,
            last_payment_error={
                "code": debit["failure_code"],
                "message": debit["failure_message"],
                "type": "invalid_request_error",
                "charge": ch["id"],
            },
        )
        self._emit("charge.failed", ch, HOSTED)
        self._emit("payment_intent.payment_failed", pi, HOSTED)
        self._emit("checkout.session.async_payment_failed", session, HOSTED)

    # ---------------------------------------------------------------------- control convenience

    def pay_session(
        self,
        sid: str,
        *,
        card_number: str | None = None,
        exp_month: int = 12,
        exp_year: int | None = None,
        cvc: str = "123",
        bank_account: str | None = None,
        email: str | None = None,
        name: str | None = "Jenny Rosen",
        three_d_secure: str = "complete",
    ) -> PayResult:
        """Pay without a browser; 3-D Secure cards are completed or failed per `three_d_secure`."""
        if bank_account is not None:
            return self.pay_with_bank(sid, bank_account, email=email or "buyer@example.com", name=name)
        year = exp_year or time.gmtime(self._clock.now()).tm_year + 3
        card, errors = self.validate_card(card_number or "4242424242424242", str(exp_month), str(year), cvc)
        if card is None:
            session = self._store.get_or_404(self._store.sessions, "checkout.session", sid)
            return PayResult("invalid", session, field_errors=errors)
        result = self.pay_with_card(sid, card, email=email or "buyer@example.com", name=name)
        if result.status == "requires_action" and result.payment_intent:
            if three_d_secure not in ("complete", "fail"):
                return result
            return self.finish_challenge(sid, result.payment_intent, three_d_secure == "complete")
        return result


_STATEMENT_DESCRIPTOR = "STOREFRONT SANDBOX"
_CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation", "requires_action")


def _payment_error(decline: Decline, charge_id: str | None, error_type: str) -> Obj:
    err: Obj = {
        "code": decline.code,
        "doc_url": "https://stripe.com/docs/error-codes/" + decline.code.replace("_", "-"),
        "message": decline.message,
        "type": error_type,
    }
    if decline.decline_code:
        err["decline_code"] = decline.decline_code
    if charge_id:
        err["charge"] = charge_id
    return err
