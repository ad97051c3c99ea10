"""The one place that talks to Stripe (or the sandbox, which answers the same way).

Features never import ``stripe``: they call :class:`StripeGateway` and catch
:class:`PaymentProviderError`, whose subclasses say whether the buyer may simply retry
(:class:`ProviderUnavailable`) or Stripe refused the request (:class:`ProviderRejected`,
:class:`PaymentDeclined`). Their ``user_message()`` is plain words in the buyer's language.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

import stripe

from app import i18n
from app.catalogue.model import Pack
from app.checkout.links import cancel_token
from app.i18n import gettext as _
from app.money.models import Order
from app.settings import Settings

MIN_EXPIRY_SECONDS: Final = 30 * 60
MAX_EXPIRY_SECONDS: Final = 24 * 3600
"""Stripe accepts ``expires_at`` between 30 minutes and 24 hours from now."""


class PaymentProviderError(Exception):
    """Stripe could not do what we asked; ``code`` is kept on the order, the message is for people."""

    code: str = "stripe_error"

    def __init__(self, detail: str = "", *, code: str | None = None) -> None:
        super().__init__(detail or self.code)
        self.detail = detail
        if code:
            self.code = code

    def user_message(self) -> str:
        return message_for(self.code)


class ProviderUnavailable(PaymentProviderError):
    """No answer (or a 5xx / rate limit) even after the SDK's retries: worth trying again later."""

    code = "stripe_unreachable"


class ProviderRejected(PaymentProviderError):
    """Stripe answered and refused the request (bad parameters, key, permissions...)."""

    code = "stripe_rejected"


class CustomerMissing(ProviderRejected):
    """Stripe has no such Customer (deleted, e.g. from the dashboard): the stored id is stale."""

    code = "customer_missing"


class PaymentDeclined(ProviderRejected):
    """The card or bank said no; ``code`` is the decline code."""

    code = "card_declined"


def message_for(code: str | None) -> str:
    """Plain words for a stored failure code, in the current request's language."""
    messages = {
        "stripe_unreachable": _(
            "We could not reach the payment provider. Nothing was charged; please try again in a minute."
        ),
        "stripe_rejected": _(
            "The payment provider could not start this payment. Nothing was charged; please try again later."
        ),
        "card_declined": _("Your card was declined. Nothing was charged; please try another card."),
        "generic_decline": _("Your card was declined. Nothing was charged; please try another card."),
        "insufficient_funds": _("Your card has insufficient funds. Nothing was charged."),
        "lost_card": _("Your card was declined. Nothing was charged; please try another card."),
        "stolen_card": _("Your card was declined. Nothing was charged; please try another card."),
        "expired_card": _("Your card has expired. Please use another card."),
        "incorrect_cvc": _("The card's security code is incorrect. Please check it and try again."),
        "incorrect_number": _("The card number is incorrect. Please check it and try again."),
        "processing_error": _("The card could not be processed. Please try again in a moment."),
        "authentication_required": _("Your bank asked for verification that did not complete."),
        "rate_limit": _("The payment provider is busy. Nothing was charged; please try again in a minute."),
    }
    return messages.get(code or "", messages["stripe_rejected"])


def _translate(exc: stripe.StripeError, *, customer_param: str | None = None) -> PaymentProviderError:
    """Map the SDK's exceptions onto our three kinds (the SDK has already retried what it may).

    ``customer_param`` names where the call passes a Customer id (``customer`` on a Checkout
    Session, ``id`` on the Customer's own routes): Stripe's resource_missing there is
    :class:`CustomerMissing`, which the checkout recovers from.
    """
    detail = f"{type(exc).__name__}: {exc.user_message or exc._message or ''}"
    error = exc.error
    if (
        customer_param is not None
        and isinstance(exc, stripe.InvalidRequestError)
        and exc.code == "resource_missing"
        and error is not None
        and getattr(error, "param", None) == customer_param
    ):
        return CustomerMissing(detail)
    if isinstance(exc, stripe.APIConnectionError):
        return ProviderUnavailable(detail)
    if isinstance(exc, stripe.RateLimitError):
        return ProviderUnavailable(detail, code="rate_limit")
    if isinstance(exc, stripe.CardError):
        error = exc.error
        decline = getattr(error, "decline_code", None) if error is not None else None
        return PaymentDeclined(detail, code=str(decline or exc.code or "card_declined"))
    if isinstance(exc, stripe.APIError) or (exc.http_status or 0) >= 500:
        return ProviderUnavailable(detail)
    return ProviderRejected(detail)


def clamp_expiry(seconds: int) -> int:
    return max(MIN_EXPIRY_SECONDS, min(MAX_EXPIRY_SECONDS, seconds))


def session_idempotency_key(
    installation_id: str, order: Order, after_lost_customer: str | None = None
) -> str:
    """Stripe replays the first answer for the same key, so one order never gets two sessions.

    Keys are per Stripe account: the installation id keeps two databases on one account apart,
    and the order's creation time keeps a restored copy (same installation id, order ids handed
    out again) from repeating the keys of orders made after its backup. The attempt made after
    Stripe refused a deleted Customer gets a key of its own (that refusal made no session).
    """
    made = f"-{int(order.created_at.timestamp() * 1_000_000)}" if order.created_at else ""
    after = f"-after-{after_lost_customer}" if after_lost_customer else ""
    return f"{installation_id}-order-{order.id}{made}-session{after}"


def customer_idempotency_key(
    installation_id: str, user_id: int, created_at: float | None, replacing: str | None = None
) -> str:
    """One key per buyer, so two first checkouts racing each other make one Customer.

    Like :func:`session_idempotency_key`: the installation id and the account's creation time
    keep other databases (and restored copies) on the same Stripe account apart. A Customer
    made to replace a deleted one names it (``replacing``): the first key would replay the
    deleted Customer for 24 hours, while this one still makes one replacement, however retried.
    """
    made = f"-{int(created_at * 1_000_000)}" if created_at else ""
    after = f"-after-{replacing}" if replacing else ""
    return f"{installation_id}-user-{user_id}{made}-customer{after}"


def as_mapping(obj: Any) -> dict[str, Any]:
    """A plain, recursive ``dict`` copy of an SDK object (what the services take)."""
    if isinstance(obj, stripe.StripeObject):
        return obj.to_dict()
    return dict(obj)


class StripeGateway:
    """Owns the async ``StripeClient``; features call its methods, never the SDK directly."""

    def __init__(
        self, settings: Settings, *, installation_id: Callable[[], Awaitable[str]] | None = None
    ) -> None:
        """``installation_id`` names this database in every idempotency key (``app.db.installation``);
        a gateway without it (reconcile) may read from Stripe but not create anything."""
        # The SDK logs every request at INFO; our own log lines say what matters.
        logging.getLogger("stripe").setLevel(logging.WARNING)
        self.settings = settings
        self._installation_id = installation_id
        self.client = stripe.StripeClient(
            settings.effective_stripe_key,
            base_addresses={"api": settings.effective_stripe_api_base},
            http_client=stripe.HTTPXClient(),
            max_network_retries=2,
        )

    async def installation_id(self) -> str:
        if self._installation_id is None:
            raise RuntimeError("this StripeGateway has no installation id: it cannot send idempotency keys")
        return await self._installation_id()

    async def close(self) -> None:
        """Release the HTTP connection pool."""
        http_client = self.client._requestor._client
        if http_client is not None and hasattr(http_client, "close_async"):
            await http_client.close_async()  # type: ignore[no-untyped-call]

    def session_params(
        self,
        order: Order,
        pack: Pack,
        *,
        customer: str,
        locale: str,
        base_url: str,
        expires_in: int,
        now: float | None = None,
    ) -> dict[str, Any]:
        """Checkout Session parameters; the price comes from the catalogue pack, never the request."""
        language = "zh" if locale == "zh" else "en"
        if pack.stripe_price:
            line_item: dict[str, Any] = {"price": pack.stripe_price, "quantity": 1}
        else:
            line_item = {
                "quantity": 1,
                "price_data": {
                    "currency": pack.currency.lower(),
                    "unit_amount": pack.price_minor,
                    "product_data": {
                        "name": pack.name.get(language),
                        "description": pack.description.get(language),
                    },
                },
            }
            if self.settings.automatic_tax:
                # A pre-made Price carries its own tax_behavior (set in the dashboard).
                line_item["price_data"]["tax_behavior"] = "inclusive" if pack.tax_inclusive else "exclusive"
        base = base_url.rstrip("/")
        token = cancel_token(self.settings.secret_key, order.id)
        metadata = {"order_id": str(order.id), "pack_id": pack.id, "user_id": str(order.user_id)}
        extra: dict[str, Any] = {}
        if pack.promotion_codes:
            extra["allow_promotion_codes"] = True
        if self.settings.automatic_tax:
            extra["automatic_tax"] = {"enabled": True}
            # Stripe prices tax at the Customer's address: the one entered on the page is kept.
            extra["customer_update"] = {"address": "auto"}
        return extra | {
            "mode": "payment",
            "line_items": [line_item],
            "client_reference_id": str(order.user_id),
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
            # The buyer's Customer: Checkout knows the email, and the receipt goes there.
            "customer": customer,
            "locale": i18n.STRIPE_LOCALES.get(language, "auto"),
            "success_url": f"{base}/checkout/success?session_id={{CHECKOUT_SESSION_ID}}",
            "cancel_url": f"{base}/checkout/cancel?order={order.id}&token={token}",
            "expires_at": int(now if now is not None else time.time()) + clamp_expiry(expires_in),
        }

    async def create_checkout_session(
        self,
        order: Order,
        pack: Pack,
        *,
        customer: str,
        locale: str,
        base_url: str,
        expires_in: int,
        after_lost_customer: str | None = None,
    ) -> stripe.checkout.Session:
        """Create the hosted payment page for ``order``; safe to repeat (idempotency key)."""
        params = self.session_params(
            order,
            pack,
            customer=customer,
            locale=locale,
            base_url=base_url,
            expires_in=expires_in,
        )
        try:
            return await self.client.v1.checkout.sessions.create_async(
                params,  # type: ignore[arg-type]
                {
                    "idempotency_key": session_idempotency_key(
                        await self.installation_id(), order, after_lost_customer
                    )
                },
            )
        except stripe.StripeError as exc:
            raise _translate(exc, customer_param="customer") from exc

    async def create_customer(
        self,
        *,
        user_id: int,
        email: str,
        created_at: float | None,
        name: str | None = None,
        replacing: str | None = None,
    ) -> str:
        """The buyer's Stripe Customer id; repeating it for one buyer gives the same Customer
        (``replacing`` names the deleted Customer this one replaces)."""
        params: dict[str, Any] = {"email": email, "metadata": {"user_id": str(user_id)}}
        if name:
            params["name"] = name
        key = customer_idempotency_key(await self.installation_id(), user_id, created_at, replacing)
        try:
            customer = await self.client.v1.customers.create_async(
                params,  # type: ignore[arg-type]
                {"idempotency_key": key},
            )
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        return str(customer.id)

    async def update_customer_email(self, customer: str, email: str) -> None:
        """Give the buyer's Customer their current email (where Stripe sends receipts).

        Setting a value is idempotent by itself: a retry, or two checkouts doing it at once,
        leave the same email (no idempotency key, which would replay an older change).
        """
        try:
            await self.client.v1.customers.update_async(customer, {"email": email})
        except stripe.StripeError as exc:
            raise _translate(exc, customer_param="id") from exc

    async def retrieve_price(self, price_id: str) -> dict[str, Any]:
        """A pre-made Price, as a plain dict (the catalogue checks it against its pack)."""
        try:
            return as_mapping(await self.client.v1.prices.retrieve_async(price_id))
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    async def retrieve_session(
        self, session_id: str, *, expand: Sequence[str] = ("payment_intent",)
    ) -> stripe.checkout.Session:
        try:
            return await self.client.v1.checkout.sessions.retrieve_async(
                session_id, {"expand": list(expand)} if expand else None
            )
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    async def expire_session(self, session_id: str) -> stripe.checkout.Session:
        """Close an open session so it can no longer be paid (Stripe refuses if it is complete)."""
        try:
            return await self.client.v1.checkout.sessions.expire_async(session_id)
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    async def list_events(
        self, *, created_gte: int | None = None, types: Sequence[str] = (), page_size: int = 100
    ) -> AsyncIterator[dict[str, Any]]:
        """Every event (newest first, as Stripe lists them), following all pages."""
        params: dict[str, Any] = {"limit": page_size}
        if created_gte is not None:
            params["created"] = {"gte": created_gte}
        if types:
            params["types"] = list(types)
        try:
            page = await self.client.v1.events.list_async(params)  # type: ignore[arg-type]
            async for event in page.auto_paging_iter():
                yield event.to_dict()
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    async def create_refund(
        self,
        *,
        payment_intent: str,
        amount: int | None = None,
        reason: str | None = None,
        idempotency_key: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> stripe.Refund:
        """Refund all or part of a payment (admin tools and tests)."""
        params: dict[str, Any] = {"payment_intent": payment_intent}
        if amount is not None:
            params["amount"] = amount
        if reason:
            params["reason"] = reason
        if metadata:
            params["metadata"] = dict(metadata)
        options: dict[str, Any] = {}
        if idempotency_key:
            options["idempotency_key"] = f"{await self.installation_id()}-{idempotency_key}"
        try:
            return await self.client.v1.refunds.create_async(params, options)  # type: ignore[arg-type]
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
