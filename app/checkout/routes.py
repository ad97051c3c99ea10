"""Buying a pack: start Checkout, wait for the payment on the success page, come back from cancel.

Failure pages follow post/redirect/get: ``POST /checkout`` marks the order failed and answers
303 (so the plugin commits the failed order, one transaction), then ``GET /checkout/failed``
explains it with a 502/503. A 5xx answer from the POST itself would roll the order back.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import structlog
from litestar import MediaType, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from sqlalchemy.ext.asyncio import AsyncSession

from app import i18n
from app.accounts.models import User
from app.accounts.verification import needs_verification, verification_required_page
from app.catalogue.model import Pack
from app.catalogue.reload import CatalogueHolder
from app.checkout import status as fragments
from app.checkout.links import cancel_token_ok
from app.checkout.service import (
    CheckoutFailed,
    CheckoutLimited,
    buy_again_pack,
    cancel_order,
    cancellable,
    order_of,
    refresh_from_stripe,
    start_checkout,
)
from app.db.writer import background_writer
from app.i18n import gettext as _
from app.money.models import Order, OrderStatus
from app.settings import Settings
from app.stripe_gateway import PaymentProviderError, StripeGateway, message_for
from app.web.params import RowId
from app.web.transactions import READ_ONLY_OPT

log = structlog.get_logger(__name__)

STATUS_TEMPLATE = "checkout/partials/order_status.html"


def _problem(status: int, message: str, headers: dict[str, str] | None = None) -> Template:
    return Template(
        template_name="errors/error.html",
        context={"status": status, "message": message},
        status_code=status,
        headers=headers,
    )


def _limited(exc: CheckoutLimited) -> Template:
    """429 with words for the cap that was hit; ``Retry-After`` says when trying again can work."""
    if exc.cap == "open":
        message = _(
            "You already have %(count)s purchases waiting for payment. Finish or cancel one of them "
            "(or let it expire) before starting another."
        ) % {"count": exc.limit}
    else:
        message = _(
            "You have started %(count)s purchases in the last hour. Please try again in %(minutes)s minutes."
        ) % {"count": exc.limit, "minutes": max(1, round(exc.retry_after / 60))}
    return _problem(429, message, headers={"Retry-After": str(exc.retry_after)})


async def _own_order(db: AsyncSession, user: User, order: Order | None) -> Order:
    """The order if it is this buyer's; anything else is a 404 (no hint that it exists)."""
    if order is None or order.user_id != user.id:
        raise NotFoundException()
    return order


async def buy_pack(
    db_session: AsyncSession,
    catalogue: CatalogueHolder,
    stripe: StripeGateway,
    settings: Settings,
    user: User,
    pack_id: str,
) -> Response[Any]:
    """Start Checkout for one pack: the pricing page's button, or straight after signing in from it.

    Only the pack id comes from the visitor: price, amount, currency... all from the catalogue.
    """
    pack = _pack_or_problem(catalogue, pack_id)
    if isinstance(pack, Template):
        return pack
    if needs_verification(settings, user):
        return verification_required_page(user)
    try:
        started = await start_checkout(
            db_session, stripe, settings, user=user, pack=pack, locale=i18n.current_locale()
        )
    except CheckoutLimited as exc:
        return _limited(exc)
    except CheckoutFailed as exc:
        return Redirect(path=f"/checkout/failed?order={exc.order.id}", status_code=HTTP_303_SEE_OTHER)
    return Redirect(path=started.url, status_code=HTTP_303_SEE_OTHER)


def _pack_or_problem(catalogue: CatalogueHolder, pack_id: str) -> Pack | Template:
    if not pack_id:
        return _problem(400, _("Please choose a pack to buy."))
    pack = catalogue.catalogue.get(pack_id)
    if pack is None:
        return _problem(404, _("We could not find that pack. Please choose one from the pricing page."))
    if not pack.active:
        return _problem(400, _("That pack is no longer on sale. Please choose another one."))
    return pack


def sign_in_to_buy(pack_id: str) -> str:
    """Where a signed-out buyer goes: sign-in, which explains why and comes back to this pack."""
    return "/sign-in?" + urlencode({"pack": pack_id})


@post("/checkout", name="checkout:start")
async def start(
    request: Request[Any, Any, Any],
    db_session: AsyncSession,
    catalogue: CatalogueHolder,
    stripe: StripeGateway,
    settings: Settings,
    current_user: User | None,
) -> Response[Any]:
    """A signed-out visitor with a pack on sale goes to sign in (or up), then straight to Checkout."""
    form = await request.form()
    raw_pack = form.get("pack")
    pack_id = raw_pack.strip() if isinstance(raw_pack, str) else ""
    if current_user is None:
        pack = _pack_or_problem(catalogue, pack_id)
        if isinstance(pack, Template):
            return pack
        return Redirect(path=sign_in_to_buy(pack.id), status_code=HTTP_303_SEE_OTHER)
    return await buy_pack(db_session, catalogue, stripe, settings, current_user, pack_id)


@get("/checkout/failed", name="checkout:failed", opt={READ_ONLY_OPT: True})
async def failed(
    db_session: AsyncSession, catalogue: CatalogueHolder, user: User, order: RowId
) -> Response[Any]:
    found = await _own_order(db_session, user, await order_of(db_session, order_id=order))
    reason = found.status_reason or "stripe_rejected"
    status_code = 503 if reason in ("stripe_unreachable", "rate_limit") else 502
    if found.status != OrderStatus.FAILED:
        status_code = 200
    return Template(
        template_name="checkout/failed.html",
        context={
            "current_user": user,
            "order": found,
            "message": message_for(reason),
            "retry_pack": buy_again_pack(catalogue.catalogue, found),
        },
        status_code=status_code,
    )


async def _status_body(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    catalogue: CatalogueHolder,
    stripe: StripeGateway,
    order: Order,
    locale: str,
) -> bytes:
    balance = await fragments.credited_balance(db, order) if order.status == OrderStatus.PAID else None
    context = fragments.status_context(
        order,
        catalogue.catalogue,
        locale,
        balance_after=balance,
        receipt_url=await fragments.receipt_url(stripe, order),
    )
    engine = request.app.template_engine
    assert engine is not None
    # The request is there for ``url_for`` alone (app-wide paths), so a final fragment can be shared.
    html: str = engine.get_template(STATUS_TEMPLATE).render(**context, request=request)
    body = html.encode()
    fragments.remember_fragment(order, locale, body)
    return body


@get("/checkout/success", name="checkout:success")
async def success(
    request: Request[Any, Any, Any],
    db_session: AsyncSession,
    catalogue: CatalogueHolder,
    stripe: StripeGateway,
    user: User,
    session_id: str = "",
) -> Response[Any]:
    """The buyer's landing page after paying; only the buyer may see it."""
    order = await _own_order(
        db_session, user, await order_of(db_session, session_id=session_id[:255] or None)
    )
    await refresh_from_stripe(db_session, stripe, order)
    locale = i18n.current_locale()
    body = await _status_body(request, db_session, catalogue, stripe, order, locale)
    return Template(
        template_name="checkout/success.html",
        context={
            "current_user": user,
            "order": order,
            "status_html": body.decode(),
            "final": OrderStatus(order.status).final,
        },
    )


@get(
    "/checkout/status/{order_id:int}",
    name="checkout:status",
    # Polled every second per waiting buyer: SQLite's deferred transaction, which never waits for
    # (nor holds) the write lock; the healing writes go through the money writer.
    opt={"skip_session": True, READ_ONLY_OPT: True},
    media_type=MediaType.HTML,
)
async def order_status(
    request: Request[Any, Any, Any],
    db_session: AsyncSession,
    catalogue: CatalogueHolder,
    stripe: StripeGateway,
    order_id: RowId,
    lang: str = "",
) -> Response[bytes]:
    """The polled fragment: 200 while waiting (at most one Stripe check per few seconds), 286 once final."""
    locale = lang if lang in i18n.SUPPORTED else i18n.current_locale()
    i18n.set_locale(locale)
    user_id = await fragments.viewer_id(request)
    if user_id is None:
        return Response(
            content=_("Please sign in first.").encode(), status_code=401, media_type=MediaType.TEXT
        )
    cached = fragments.cached_fragment(order_id, locale, user_id)
    if cached is not None:
        return Response(content=cached, status_code=fragments.STOP_POLLING, media_type=MediaType.HTML)
    order = await order_of(db_session, order_id=order_id)
    if order is None or order.user_id != user_id:
        raise NotFoundException()
    await refresh_from_stripe(db_session, stripe, order, writer=background_writer(request.app))
    body = await _status_body(request, db_session, catalogue, stripe, order, locale)
    final = OrderStatus(order.status).final
    return Response(
        content=body, status_code=fragments.STOP_POLLING if final else 200, media_type=MediaType.HTML
    )


async def _cancel_page(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    catalogue: CatalogueHolder,
    stripe: StripeGateway,
    user: User,
    order: Order,
    *,
    confirmed: bool,
) -> Template:
    """Cancel (``confirmed``: the token Stripe was given, or the buyer's POST) or only show and ask."""
    problem: str | None = None
    if confirmed:
        try:
            await cancel_order(db, stripe, order)
        except PaymentProviderError as exc:
            log.warning("checkout.cancel_failed", order_id=order.id, code=exc.code)
            problem = exc.user_message()
        await db.refresh(order)
    else:
        # Showing Stripe's truth is no state change the buyer did not ask for (as on the success page).
        await refresh_from_stripe(db, stripe, order)
    locale = i18n.current_locale()
    body = await _status_body(request, db, catalogue, stripe, order, locale)
    return Template(
        template_name="checkout/cancel.html",
        context={
            "current_user": user,
            "order": order,
            "status_html": body.decode(),
            "final": OrderStatus(order.status).final,
            "problem": problem,
            "ask": not confirmed and cancellable(order),
            "retry_pack": buy_again_pack(catalogue.catalogue, order),
        },
    )


@get("/checkout/cancel", name="checkout:cancel")
async def cancel(
    request: Request[Any, Any, Any],
    db_session: AsyncSession,
    catalogue: CatalogueHolder,
    stripe: StripeGateway,
    settings: Settings,
    user: User,
    order: RowId,
    token: str = "",
) -> Response[Any]:
    """Where Stripe sends a buyer who backs out: with the link's token, close the session (unless paid).

    Without a valid token (a link from anywhere else) nothing changes: the page offers a POST button.
    """
    found = await _own_order(db_session, user, await order_of(db_session, order_id=order))
    confirmed = cancel_token_ok(settings.secret_key, found.id, token)
    return await _cancel_page(request, db_session, catalogue, stripe, user, found, confirmed=confirmed)


@post("/checkout/cancel", name="checkout:cancel_confirm")
async def cancel_confirm(
    request: Request[Any, Any, Any],
    db_session: AsyncSession,
    catalogue: CatalogueHolder,
    stripe: StripeGateway,
    user: User,
) -> Response[Any]:
    """The buyer's own button (CSRF-checked by the middleware): cancel as the token link would."""
    form = await request.form()
    raw_order = form.get("order")
    # ASCII digits only: "²".isdigit() is true, yet int("²") raises.
    order_id = (
        int(raw_order) if isinstance(raw_order, str) and raw_order.isascii() and raw_order.isdigit() else 0
    )
    found = await _own_order(db_session, user, await order_of(db_session, order_id=order_id))
    return await _cancel_page(request, db_session, catalogue, stripe, user, found, confirmed=True)


ROUTES: list[Any] = [start, failed, success, order_status, cancel, cancel_confirm]
