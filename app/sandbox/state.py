"""The sandbox's stateful core: objects, the clock, events, idempotency and persistence.

All mutations are synchronous methods (no awaits inside), so each runs atomically on the event
loop; the public async wrappers also take `lock` so multi-step callers can group work. Objects
are stored as the JSON dicts Stripe would return, which keeps serving and persisting cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import stripe

from . import objects
from .cards import AUTHENTICATION_FAILED, Decline, bank_outcome, lookup, luhn_ok, normalize_number
from .config import SandboxConfig
from .errors import StripeError, invalid, no_such
from .ids import new_id, session_id
from .money import MAXIMUM, SUPPORTED, format_plain, minimum
from .params import MAX_UNIT_AMOUNT, SIMULATED_METHODS

Obj = dict[str, Any]

API_VERSION: str = stripe.api_version
IDEMPOTENCY_TTL = 24 * 3600

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def snapshot(obj: Obj) -> Obj:
    """A deep copy via JSON, far cheaper than copy.deepcopy for these plain trees."""
    result: Obj = _decoder.decode(_encoder.encode(obj))
    return result


@dataclass
class RequestContext:
    """Who caused a mutation; becomes the event's `request` field."""

    request_id: str | None = None
    idempotency_key: str | None = None


HOSTED = RequestContext()


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


class Collection:
    """Objects of one kind in creation order: O(1) lookup by id and cheap newest-first paging."""

    def __init__(self) -> None:
        self.by_id: dict[str, Obj] = {}
        self.order: list[str] = []
        self.index: dict[str, int] = {}

    def add(self, obj: Obj) -> Obj:
        oid = obj["id"]
        self.by_id[oid] = obj
        self.index[oid] = len(self.order)
        self.order.append(oid)
        return obj

    def get(self, oid: str) -> Obj | None:
        return self.by_id.get(oid)

    def __len__(self) -> int:
        return len(self.order)

    def page(
        self,
        *,
        kind: str,
        limit: int,
        starting_after: str | None,
        ending_before: str | None,
        match: Callable[[Obj], bool] | None = None,
    ) -> tuple[list[Obj], bool]:
        """Stripe list semantics: newest first; cursors exclude the named object."""
        if starting_after and ending_before:
            raise invalid("You may only specify one of these parameters: starting_after, ending_before.")
        found: list[Obj] = []
        if ending_before:
            pos = self._cursor(kind, ending_before, "ending_before")
            indices: Iterable[int] = range(pos + 1, len(self.order))
        else:
            start = (
                self._cursor(kind, starting_after, "starting_after") if starting_after else len(self.order)
            )
            indices = range(start - 1, -1, -1)
        for i in indices:
            obj = self.by_id[self.order[i]]
            if match is None or match(obj):
                found.append(obj)
                if len(found) > limit:
                    break
        has_more = len(found) > limit
        found = found[:limit]
        if ending_before:
            found.reverse()
        return found, has_more

    def _cursor(self, kind: str, oid: str, param: str) -> int:
        pos = self.index.get(oid)
        if pos is None:
            raise StripeError(f"No such {kind}: '{oid}'", code="resource_missing", param=param)
        return pos

    def dump(self) -> list[Obj]:
        return [self.by_id[i] for i in self.order]

    def load(self, items: list[Obj]) -> None:
        for item in items:
            self.add(item)


class SandboxState:
    """The sandbox's data and operations; also the Python control API for in-process tests."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.lock = asyncio.Lock()
        self.clock_offset = 0.0
        self.sessions = Collection()
        self.payment_intents = Collection()
        self.charges = Collection()
        self.refunds = Collection()
        self.disputes = Collection()
        self.events = Collection()
        self.balance_transactions = Collection()
        self.prices: dict[str, Obj] = {}
        self.line_items: dict[str, list[Obj]] = {}
        # Hidden per-session facts Stripe keeps but doesn't expose (attempt PI, metadata for PI).
        self.session_extra: dict[str, Obj] = {}
        # Pending 3-D Secure challenges: PaymentIntent id -> card facts to finish with.
        self.challenges: dict[str, Obj] = {}
        self.pending_debits: list[Obj] = []
        self.expiry_heap: list[tuple[int, str]] = []
        self.idempotency: dict[str, Obj] = {}
        self.endpoints: list[tuple[str, str]] = list(config.webhook_endpoints)
        # event id -> {endpoint url: "pending" | "succeeded" | "failed"}
        self.delivery_status: dict[str, dict[str, str]] = {}
        self.delivery_attempts: list[Obj] = []
        self._listeners: list[Callable[[str], None]] = []
        self._dirty = asyncio.Event() if config.state_file else None
        if config.state_file and Path(config.state_file).exists():
            self._load(Path(config.state_file))

    # ----------------------------------------------------------------- clock, events, persistence

    def now(self) -> int:
        return int(time.time() + self.clock_offset)

    def on_event(self, listener: Callable[[str], None]) -> None:
        """Register a callback receiving each new event id (the delivery worker uses it)."""
        self._listeners.append(listener)

    def emit(self, event_type: str, obj: Obj, ctx: RequestContext, previous: Obj | None = None) -> Obj:
        data: Obj = {"object": snapshot(obj)}
        if previous is not None:
            data["previous_attributes"] = previous
        event = objects.event(
            event_id=new_id("evt_"),
            created=self.now(),
            api_version=API_VERSION,
            event_type=event_type,
            data=data,
            pending_webhooks=len(self.endpoints),
            request_id=ctx.request_id,
            idempotency_key=ctx.idempotency_key,
        )
        self.events.add(event)
        self.delivery_status[event["id"]] = dict.fromkeys((url for url, _ in self.endpoints), "pending")
        for listener in self._listeners:
            listener(event["id"])
        self.mark_dirty()
        return event

    def event_view(self, event: Obj) -> Obj:
        """An event with its live `pending_webhooks` count."""
        statuses = self.delivery_status.get(event["id"], {})
        pending = sum(1 for s in statuses.values() if s != "succeeded")
        if pending == event["pending_webhooks"]:
            return event
        return {**event, "pending_webhooks": pending}

    def delivery_succeeded(self, event_id: str) -> bool:
        return all(s == "succeeded" for s in self.delivery_status.get(event_id, {}).values())

    def mark_dirty(self) -> None:
        if self._dirty is not None:
            self._dirty.set()

    def _dump(self) -> bytes:
        return _encoder.encode(
            {
                "version": 1,
                "clock_offset": self.clock_offset,
                "sessions": self.sessions.dump(),
                "payment_intents": self.payment_intents.dump(),
                "charges": self.charges.dump(),
                "refunds": self.refunds.dump(),
                "disputes": self.disputes.dump(),
                "events": self.events.dump(),
                "balance_transactions": self.balance_transactions.dump(),
                "prices": self.prices,
                "line_items": self.line_items,
                "session_extra": self.session_extra,
                "challenges": self.challenges,
                "pending_debits": self.pending_debits,
                "idempotency": self.idempotency,
                "delivery_status": self.delivery_status,
                "delivery_attempts": self.delivery_attempts,
            }
        )

    def _load(self, path: Path) -> None:
        data: Obj = _decoder.decode(path.read_bytes())
        self.clock_offset = float(data["clock_offset"])
        for name in (
            "sessions",
            "payment_intents",
            "charges",
            "refunds",
            "disputes",
            "events",
            "balance_transactions",
        ):
            getattr(self, name).load(data[name])
        self.prices = data["prices"]
        self.line_items = data["line_items"]
        self.session_extra = data["session_extra"]
        self.challenges = data["challenges"]
        self.pending_debits = data["pending_debits"]
        self.idempotency = data["idempotency"]
        self.delivery_status = data["delivery_status"]
        self.delivery_attempts = data["delivery_attempts"]
        self.expiry_heap = [(s["expires_at"], s["id"]) for s in self.sessions.dump() if s["status"] == "open"]
        heapq.heapify(self.expiry_heap)

    def save_now(self) -> None:
        """Write the state file atomically (temp file + rename) so a crash never leaves half a file."""
        path = self.config.state_file
        if path is None:
            return
        payload = self._dump()
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    async def run_saver(self) -> None:
        """Debounced persistence: at most one write per `save_debounce` seconds."""
        if self._dirty is None:
            return
        try:
            while True:
                await self._dirty.wait()
                await asyncio.sleep(self.config.save_debounce)
                self._dirty.clear()
                self.save_now()
        finally:
            if self._dirty.is_set():
                self.save_now()

    async def run_ticker(self) -> None:
        """Expire sessions and settle bank debits as the (possibly advanced) clock passes them."""
        while True:
            await asyncio.sleep(self.config.tick_interval)
            self.tick()

    def tick(self) -> None:
        now = self.now()
        while self.expiry_heap and self.expiry_heap[0][0] <= now:
            _, sid = heapq.heappop(self.expiry_heap)
            session = self.sessions.get(sid)
            if session is not None and session["status"] == "open":
                self._expire(session, HOSTED)
        due = [d for d in self.pending_debits if d["resolve_at"] <= now]
        if due:
            self.pending_debits = [d for d in self.pending_debits if d["resolve_at"] > now]
            for debit in due:
                self._settle_debit(debit)

    def advance_clock(self, seconds: float) -> int:
        """Move the sandbox clock forward; due expirations and debits happen at once."""
        if seconds < 0:
            raise invalid("The sandbox clock only moves forward.", param="seconds")
        self.clock_offset += seconds
        self.mark_dirty()
        self.tick()
        return self.now()

    # ------------------------------------------------------------------------------- idempotency

    def idempotent_lookup(self, scope: str, key: str, fingerprint: str) -> Obj | None:
        entry = self.idempotency.get(f"{scope}:{key}")
        if entry is None:
            return None
        if entry["created"] + IDEMPOTENCY_TTL < self.now():
            del self.idempotency[f"{scope}:{key}"]
            return None
        if entry["fingerprint"] != fingerprint:
            raise StripeError(
                "Keys for idempotent requests can only be used with the same parameters they were first "
                f"used with. Try using a key other than '{key}' if you meant to execute a different request.",
                type="idempotency_error",
            )
        return entry

    def idempotent_store(self, scope: str, key: str, fingerprint: str, status: int, body: bytes) -> None:
        self.idempotency[f"{scope}:{key}"] = {
            "fingerprint": fingerprint,
            "status": status,
            "body": body.decode(),
            "created": self.now(),
        }
        self.mark_dirty()

    # ---------------------------------------------------------------------------------- lookups

    def fetch(self, oid: str) -> Obj | None:
        """Any object by its id prefix (used for expansion)."""
        for prefix, coll in (
            ("cs_", self.sessions),
            ("pi_", self.payment_intents),
            ("ch_", self.charges),
            ("py_", self.charges),
            ("re_", self.refunds),
            ("du_", self.disputes),
            ("dp_", self.disputes),
            ("txn_", self.balance_transactions),
            ("evt_", self.events),
        ):
            if oid.startswith(prefix):
                return coll.get(oid)
        return None

    def get_or_404(self, coll: Collection, kind: str, oid: str) -> Obj:
        obj = coll.get(oid)
        if obj is None:
            raise no_such(kind, oid)
        return obj

    def line_items_list(
        self, sid: str, limit: int = 10, starting_after: str | None = None, ending_before: str | None = None
    ) -> Obj:
        items = self.line_items.get(sid, [])
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

    # ------------------------------------------------------------------------------ prices

    def register_price(
        self,
        *,
        currency: str,
        unit_amount: int,
        product_name: str,
        price_id: str | None = None,
        product_id: str | None = None,
    ) -> Obj:
        currency = currency.lower()
        if currency not in SUPPORTED:
            raise invalid(f"Invalid currency: {currency}.", param="currency")
        if not 0 <= unit_amount <= MAX_UNIT_AMOUNT:
            raise invalid("unit_amount must be between 0 and 99999999.", param="unit_amount")
        pid = price_id or new_id("price_")
        if not pid.startswith("price_"):
            raise invalid("Price ids start with `price_`.", param="id")
        price = objects.price(
            pid, product_id or new_id("prod_"), currency, unit_amount, self.now(), active=True
        )
        price["_product_name"] = product_name
        self.prices[pid] = price
        self.mark_dirty()
        return {k: v for k, v in price.items() if not k.startswith("_")}

    # ------------------------------------------------------------------------- checkout sessions

    def create_session(self, params: Obj, ctx: RequestContext, public_url: str) -> Obj:
        if params["mode"] != "payment":
            raise invalid("The Stripe sandbox only simulates Checkout in `payment` mode.", param="mode")
        if params.get("ui_mode", "hosted") != "hosted":
            raise invalid(
                "The Stripe sandbox only simulates hosted Checkout (`ui_mode=hosted`).", param="ui_mode"
            )
        raw_items = params.get("line_items")
        if not raw_items:
            raise invalid("Missing required param: line_items.", param="line_items", code="parameter_missing")
        now = self.now()
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
                raise invalid(
                    f"Missing required param: {path}[quantity].",
                    param=f"{path}[quantity]",
                    code="parameter_missing",
                )
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
        if email is not None and not _looks_like_email(email):
            raise invalid(f"Invalid email address: {email}", param="customer_email", code="email_invalid")
        methods = self._method_types(params.get("payment_method_types"), currency)
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
        self.sessions.add(session)
        self.line_items[sid] = items
        pid_data = params.get("payment_intent_data", {})
        self.session_extra[sid] = {
            "payment_intent": None,
            "pi_metadata": pid_data.get("metadata", {}),
            "pi_description": pid_data.get("description"),
            "receipt_email": pid_data.get("receipt_email"),
        }
        heapq.heappush(self.expiry_heap, (expires_at, sid))
        self.mark_dirty()
        return session

    def _line_price(self, raw: Obj, path: str, now: int) -> tuple[Obj, str]:
        if "price" in raw and "price_data" in raw:
            raise invalid(
                f"You may only specify one of these parameters: {path}[price], {path}[price_data].",
                param=f"{path}[price]",
            )
        if "price" in raw:
            price = self.prices.get(raw["price"])
            if price is None:
                raise invalid(
                    f"No such price: '{raw['price']}'", param=f"{path}[price]", code="resource_missing"
                )
            clean = {k: v for k, v in price.items() if not k.startswith("_")}
            return clean, str(price["_product_name"])
        data = raw.get("price_data")
        if data is None:
            raise invalid(
                f"Missing required param: {path}[price_data].",
                param=f"{path}[price_data]",
                code="parameter_missing",
            )
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
                raise invalid(
                    f"Missing required param: {dpath}[unit_amount].",
                    param=f"{dpath}[unit_amount]",
                    code="parameter_missing",
                )
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
            raise invalid(
                f"No such product: '{data['product']}'", param=f"{dpath}[product]", code="resource_missing"
            )
        if product_data is None:
            raise invalid(
                f"Missing required param: {dpath}[product_data].",
                param=f"{dpath}[product_data]",
                code="parameter_missing",
            )
        price = objects.price(new_id("price_"), new_id("prod_"), currency, amount, now, active=False)
        return price, product_data["name"]

    def _method_types(self, requested: list[str] | None, currency: str) -> list[str]:
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

    def expire_session(self, sid: str, ctx: RequestContext) -> Obj:
        session = self.get_or_404(self.sessions, "checkout.session", sid)
        if session["status"] != "open":
            raise invalid(
                f'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session '
                f"has a status of {session['status']}."
            )
        self._expire(session, ctx)
        return session

    def _expire(self, session: Obj, ctx: RequestContext) -> None:
        extra = self.session_extra[session["id"]]
        pi_id = extra.get("payment_intent")
        if pi_id:
            pi = self.payment_intents.by_id[pi_id]
            if pi["status"] not in ("succeeded", "canceled"):
                pi.update(
                    status="canceled",
                    canceled_at=self.now(),
                    cancellation_reason="abandoned",
                    next_action=None,
                )
                self.challenges.pop(pi_id, None)
                self.emit("payment_intent.canceled", pi, ctx)
        session.update(status="expired", url=None)
        self.emit("checkout.session.expired", session, ctx)

    # ---------------------------------------------------------------------------------- payments

    def _open_session(self, sid: str) -> Obj:
        session = self.get_or_404(self.sessions, "checkout.session", sid)
        if session["status"] != "open":
            raise invalid(f"This Checkout Session is no longer open (status {session['status']}).")
        if session["expires_at"] <= self.now():
            self._expire(session, HOSTED)
            raise invalid("This Checkout Session has expired.")
        return session

    def _ensure_pi(self, session: Obj, method: str, ctx: RequestContext) -> Obj:
        """Stripe creates the PaymentIntent on the first confirm and reuses it for retries."""
        extra = self.session_extra[session["id"]]
        pi_id = extra.get("payment_intent")
        if pi_id:
            pi = self.payment_intents.by_id[pi_id]
            pi["payment_method_types"] = [method]
            return pi
        pi = objects.payment_intent(
            pi_id=new_id("pi_"),
            created=self.now(),
            amount=session["amount_total"],
            currency=session["currency"],
            method_type=method,
            description=extra.get("pi_description"),
            metadata=dict(extra.get("pi_metadata") or {}),
            receipt_email=extra.get("receipt_email"),
        )
        self.payment_intents.add(pi)
        extra["payment_intent"] = pi["id"]
        self.emit("payment_intent.created", pi, ctx)
        return pi

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
            current = time.gmtime(self.now())
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
        ctx: RequestContext = HOSTED,
    ) -> PayResult:
        session = self._open_session(sid)
        email = email or session.get("customer_email")
        if not email or not _looks_like_email(email):
            return PayResult("invalid", session, field_errors={"email": "Your email address is invalid."})
        test_card = lookup(card.number)
        pi = self._ensure_pi(session, "card", ctx)
        facts: Obj = {
            "session": sid,
            "number": card.number,
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
            "email": email,
            "name": name,
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
            self.challenges[pi["id"]] = facts
            self.emit("payment_intent.requires_action", pi, ctx)
            self.mark_dirty()
            return PayResult("requires_action", session, payment_intent=pi["id"])
        return self._charge_card(session, pi, facts, ctx, three_d_secure=None)

    def finish_challenge(
        self, sid: str, pi_id: str, authenticated: bool, ctx: RequestContext = HOSTED
    ) -> PayResult:
        """The 3-D Secure page's Complete / Fail buttons."""
        session = self._open_session(sid)
        facts = self.challenges.get(pi_id)
        if facts is None or facts["session"] != sid:
            raise no_such("payment_intent", pi_id)
        del self.challenges[pi_id]
        pi = self.payment_intents.by_id[pi_id]
        if not authenticated:
            decline = AUTHENTICATION_FAILED
            pi.update(
                status="requires_payment_method",
                next_action=None,
                payment_method=None,
                last_payment_error=_payment_error(decline, None, "invalid_request_error"),
            )
            self.emit("payment_intent.payment_failed", pi, ctx)
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
        ch = objects.charge(
            charge_id=new_id("ch_"),
            created=self.now(),
            amount=pi["amount"],
            currency=pi["currency"],
            pi_id=pi["id"],
            pm_id=pm_id,
            details=details,
            billing_email=facts["email"],
            billing_name=facts["name"],
            description=pi["description"],
            metadata=dict(pi["metadata"]),
            receipt_url=f"{self.config.public_url.rstrip('/')}/receipts/{pi['id']}",
        )
        self.charges.add(ch)
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
            self.emit("charge.failed", ch, ctx)
            self.emit("payment_intent.payment_failed", pi, ctx)
            return PayResult(
                "declined",
                session,
                message=decline.message,
                payment_intent=pi["id"],
                code=decline.code,
                decline_code=decline.decline_code,
            )
        self._capture(ch, pi, ctx)
        self._complete_session(session, pi, facts["email"], facts["name"], "US", paid=True, ctx=ctx)
        if test_card.dispute:
            self._open_dispute(ch, test_card.brand, ctx)
        return PayResult("succeeded", session, payment_intent=pi["id"])

    def _capture(self, ch: Obj, pi: Obj, ctx: RequestContext) -> None:
        txn = self.balance_transactions.add(
            objects.balance_transaction(
                txn_id=new_id("txn_"),
                created=self.now(),
                amount=ch["amount"],
                currency=ch["currency"],
                source=ch["id"],
                kind="charge",
                category="charge",
                description=ch["description"],
            )
        )
        ch.update(
            status="succeeded",
            paid=True,
            captured=True,
            amount_captured=ch["amount"],
            balance_transaction=txn["id"],
            outcome=objects.outcome_authorized(),
        )
        pi.update(
            status="succeeded",
            amount_received=pi["amount"],
            latest_charge=ch["id"],
            payment_method=ch["payment_method"],
            last_payment_error=None,
            next_action=None,
            processing=None,
        )
        self.emit("charge.succeeded", ch, ctx)
        self.emit("payment_intent.succeeded", pi, ctx)

    def _complete_session(
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
        session.update(
            status="complete",
            payment_status="paid" if paid else "unpaid",
            payment_intent=pi["id"],
            customer_details=objects.customer_details(email, name, country),
            url=None,
        )
        self.emit("checkout.session.completed", session, ctx)

    def pay_with_bank(
        self, sid: str, account: str, *, email: str | None, name: str | None, ctx: RequestContext = HOSTED
    ) -> PayResult:
        """A delayed-notification debit: the session completes unpaid and settles later."""
        session = self._open_session(sid)
        email = email or session.get("customer_email")
        if not email or not _looks_like_email(email):
            return PayResult("invalid", session, field_errors={"email": "Your email address is invalid."})
        outcome = bank_outcome(account, session["currency"])
        if outcome is None or outcome.method not in session["payment_method_types"]:
            label = "IBAN" if session["currency"] == "eur" else "account number"
            return PayResult("invalid", session, field_errors={"account": f"Your {label} is invalid."})
        normalized = account.replace(" ", "").upper()
        pi = self._ensure_pi(session, outcome.method, ctx)
        pm_id = new_id("pm_")
        details = objects.bank_details(outcome.method, normalized, new_id("mandate_"))
        ch = objects.charge(
            charge_id=new_id("py_"),
            created=self.now(),
            amount=pi["amount"],
            currency=pi["currency"],
            pi_id=pi["id"],
            pm_id=pm_id,
            details=details,
            billing_email=email,
            billing_name=name,
            description=pi["description"],
            metadata=dict(pi["metadata"]),
            receipt_url=f"{self.config.public_url.rstrip('/')}/receipts/{pi['id']}",
        )
        self.charges.add(ch)
        pi.update(status="processing", payment_method=pm_id, latest_charge=ch["id"], last_payment_error=None)
        self.emit("payment_intent.processing", pi, ctx)
        self.emit("charge.pending", ch, ctx)
        self._complete_session(
            session,
            pi,
            email,
            name,
            normalized[:2] if outcome.method == "sepa_debit" else "US",
            paid=False,
            ctx=ctx,
        )
        self.pending_debits.append(
            {
                "session": sid,
                "charge": ch["id"],
                "payment_intent": pi["id"],
                "resolve_at": self.now() + int(self.config.async_payment_delay),
                "succeeds": outcome.succeeds,
                "failure_code": outcome.failure_code,
                "failure_message": outcome.failure_message,
            }
        )
        self.mark_dirty()
        return PayResult("processing", session, payment_intent=pi["id"])

    def _settle_debit(self, debit: Obj) -> None:
        session = self.sessions.by_id[debit["session"]]
        ch = self.charges.by_id[debit["charge"]]
        pi = self.payment_intents.by_id[debit["payment_intent"]]
        if debit["succeeds"]:
            self._capture(ch, pi, HOSTED)
            previous = {"payment_status": session["payment_status"]}
            session["payment_status"] = "paid"
            self.emit("checkout.session.async_payment_succeeded", session, HOSTED, previous)
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
        self.emit("charge.failed", ch, HOSTED)
        self.emit("payment_intent.payment_failed", pi, HOSTED)
        self.emit("checkout.session.async_payment_failed", session, HOSTED)

    # ----------------------------------------------------------------------------- refunds

    def create_refund(self, params: Obj, ctx: RequestContext) -> Obj:
        ch = self._refund_target(params)
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
        txn = self.balance_transactions.add(
            objects.balance_transaction(
                txn_id=new_id("txn_"),
                created=self.now(),
                amount=-amount,
                currency=ch["currency"],
                source="",
                kind="refund",
                category="refund",
                description="REFUND FOR CHARGE",
            )
        )
        refund = objects.refund(
            refund_id=new_id("re_"),
            created=self.now(),
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
        txn["source"] = refund["id"]
        self.refunds.add(refund)
        previous = {"amount_refunded": ch["amount_refunded"], "refunded": ch["refunded"]}
        ch["amount_refunded"] += amount
        ch["refunded"] = ch["amount_refunded"] == ch["amount_captured"]
        ch["refunds"]["data"].insert(0, refund)
        if not ch["refunded"]:
            previous.pop("refunded")
        self.emit("charge.refunded", ch, ctx, previous)
        self.emit("refund.created", refund, ctx)
        # Stripe follows up once the acquirer reference (card) or the bank settlement is known.
        if method == "card":
            before = snapshot(refund["destination_details"])
            refund["destination_details"]["card"].update(
                reference=str(int(objects.fingerprint(refund["id"]), 16)).zfill(23)[:23],
                reference_status="available",
                reference_type="acquirer_reference_number",
            )
            self.emit("refund.updated", refund, ctx, {"destination_details": before})
        else:
            refund["status"] = "succeeded"
            self.emit("refund.updated", refund, ctx, {"status": "pending"})
        return refund

    def _refund_target(self, params: Obj) -> Obj:
        pi_id = params.get("payment_intent")
        ch_id = params.get("charge")
        if not pi_id and not ch_id:
            raise invalid(
                "One of the following params should be provided for this request: payment_intent or charge.",
                code="parameter_missing",
            )
        ch: Obj | None = None
        if ch_id:
            ch = self.charges.get(ch_id)
            if ch is None:
                raise invalid(f"No such charge: '{ch_id}'", param="charge", code="resource_missing")
        if pi_id:
            pi = self.payment_intents.get(pi_id)
            if pi is None:
                raise invalid(
                    f"No such payment_intent: '{pi_id}'", param="payment_intent", code="resource_missing"
                )
            if ch is not None and ch["payment_intent"] != pi_id:
                raise invalid(f"Charge {ch['id']} does not belong to PaymentIntent {pi_id}.", param="charge")
            if ch is None:
                latest = pi.get("latest_charge")
                ch = self.charges.get(latest) if latest else None
                if ch is None or pi["status"] != "succeeded":
                    raise invalid(
                        f"This PaymentIntent ({pi_id}) does not have a successful charge to refund.",
                        param="payment_intent",
                    )
        assert ch is not None
        if ch["status"] != "succeeded":
            raise invalid(f"Charge {ch['id']} has not succeeded and cannot be refunded.", param="charge")
        return ch

    # ----------------------------------------------------------------------------- disputes

    def _open_dispute(self, ch: Obj, brand: str, ctx: RequestContext) -> Obj:
        now = self.now()
        withdrawal = self.balance_transactions.add(
            objects.balance_transaction(
                txn_id=new_id("txn_"),
                created=now,
                amount=-ch["amount"],
                currency=ch["currency"],
                source="",
                kind="adjustment",
                category="dispute",
                description="Chargeback withdrawal",
            )
        )
        dispute = objects.dispute(
            dispute_id=new_id("du_"),
            created=now,
            amount=ch["amount"],
            currency=ch["currency"],
            charge_id=ch["id"],
            pi_id=ch["payment_intent"],
            brand=brand,
            balance_transactions=[],
        )
        withdrawal["source"] = dispute["id"]
        self.disputes.add(dispute)
        ch["disputed"] = True
        self.emit("charge.dispute.created", dispute, ctx)
        dispute["balance_transactions"] = [withdrawal]
        self.emit("charge.dispute.funds_withdrawn", dispute, ctx)
        return dispute

    def close_dispute(self, dispute_id: str, won: bool, ctx: RequestContext = HOSTED) -> Obj:
        dispute = self.get_or_404(self.disputes, "dispute", dispute_id)
        if dispute["status"] in ("won", "lost"):
            raise invalid(f"Dispute {dispute_id} is already closed ({dispute['status']}).")
        previous = {"status": dispute["status"]}
        dispute.update(status="won" if won else "lost", is_charge_refundable=False)
        self.emit("charge.dispute.closed", dispute, ctx, previous)
        if won:
            reinstated = self.balance_transactions.add(
                objects.balance_transaction(
                    txn_id=new_id("txn_"),
                    created=self.now(),
                    amount=dispute["amount"],
                    currency=dispute["currency"],
                    source=dispute["id"],
                    kind="adjustment",
                    category="dispute_reversal",
                    description="Chargeback reversal",
                )
            )
            dispute["balance_transactions"] = [*dispute["balance_transactions"], reinstated]
            self.emit("charge.dispute.funds_reinstated", dispute, ctx)
        return dispute

    # ------------------------------------------------------------------- control conveniences

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
        year = exp_year or time.gmtime(self.now()).tm_year + 3
        card, errors = self.validate_card(card_number or "4242424242424242", str(exp_month), str(year), cvc)
        if card is None:
            session = self.get_or_404(self.sessions, "checkout.session", sid)
            return PayResult("invalid", session, field_errors=errors)
        result = self.pay_with_card(sid, card, email=email or "buyer@example.com", name=name)
        if result.status == "requires_action" and result.payment_intent:
            if three_d_secure not in ("complete", "fail"):
                return result
            return self.finish_challenge(sid, result.payment_intent, three_d_secure == "complete")
        return result


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


def _looks_like_email(value: str) -> bool:
    local, _, domain = value.partition("@")
    return bool(local) and "." in domain and " " not in value and len(value) <= 800
