"""The buyer's side of the money path: start a Checkout, look after an order while the buyer waits.

Nothing here commits: the request (or the reconcile job) owns the one transaction. Crediting
is ``app.money.fulfilment.fulfil_checkout`` and state changes go through
``app.money.orders.transition``, so they stay monotonic whoever races us (webhook, poll,
reconcile). Those run as Core statements, so the ``Order`` a page holds is re-read after them
(:func:`_money`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache, partial
from typing import Any, Concatenate, Final, ParamSpec, TypeVar

import structlog
from sqlalchemy import Connection, bindparam, case, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.catalogue.model import Catalogue, Pack, language_of
from app.checkout.customers import with_customer
from app.db.sql import SqlConnection, run
from app.db.writer import Writer
from app.money.fulfilment import fulfil_checkout
from app.money.models import Order, OrderStatus
from app.money.orders import ORDERS, transition
from app.settings import Settings
from app.stripe_gateway import (
    PaymentProviderError,
    ProviderRejected,
    StripeGateway,
    as_mapping,
    clamp_expiry,
)

log = structlog.get_logger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

CHECK_INTERVAL: Final = timedelta(seconds=3)
"""How often the success page may ask Stripe about one order (every buyer tab together)."""


class CheckoutFailed(Exception):
    """Stripe refused or could not be reached; the order is marked failed (and stays so)."""

    def __init__(self, order: Order, error: PaymentProviderError) -> None:
        super().__init__(error.code)
        self.order = order
        self.error = error


class CheckoutLimited(Exception):
    """The buyer hit a cap (``open`` orders or orders per ``hour``); nothing was made."""

    def __init__(self, cap: str, limit: int, retry_after: int) -> None:
        super().__init__(cap)
        self.cap = cap
        self.limit = limit
        self.retry_after = retry_after


HOUR: Final = timedelta(hours=1)
REUSE_MARGIN: Final = 5 * 60
"""An open session closer than this to its expiry is not worth sending the buyer back to."""


@dataclass(frozen=True, slots=True)
class Started:
    order: Order
    url: str


def snapshot_order(user: User, pack: Pack, locale: str) -> Order:
    """An order copying everything about the pack from the catalogue: later edits don't change it."""
    language = language_of(locale)
    return Order(
        user_id=user.id,
        pack_id=pack.id,
        pack_name=pack.name.get(language),
        asset=pack.asset,
        units=pack.units,
        bonus=pack.bonus,
        amount=pack.price_minor,
        currency=pack.currency,
        locale=language,
        status=OrderStatus.PENDING,
        credit_expires_days=pack.expires_after_days,
    )


async def _money(
    db: AsyncSession,
    order: Order,
    operation: Callable[Concatenate[Connection, P], T],
    /,
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """Run a money operation about ``order``, then re-read it: Core updates bypass the ORM."""
    result = await run(db, operation, *args, **kwargs)
    await db.refresh(order)
    return result


async def _transition(db: AsyncSession, order: Order, to: OrderStatus, reason: str | None = None) -> None:
    await _money(db, order, transition, order_id=order.id, to=to, reason=reason)


async def mark_failed(db: AsyncSession, order: Order, reason: str) -> None:
    """Nothing can pay this order any more (Stripe refused it, or it never got a session)."""
    await _transition(db, order, OrderStatus.FAILED, reason=reason)


async def lock_buyer(db: AsyncSession, user_id: int) -> None:
    """Serialise one buyer's checkouts so the caps below are counted, not raced.

    PostgreSQL: a row lock on the buyer until commit (``FOR NO KEY UPDATE``, so inserts that
    only reference the buyer, such as ledger entries, are not blocked). SQLite renders no lock:
    its ``BEGIN IMMEDIATE`` already lets one writer in at a time.
    """
    await db.execute(select(User.id).where(User.id == user_id).with_for_update(key_share=True))


async def reusable_session(
    db: AsyncSession, gateway: StripeGateway, settings: Settings, *, user: User, pack: Pack, locale: str
) -> Started | None:
    """The buyer's newest still-open session for this very pack, price and language, if Stripe agrees.

    A session Stripe has closed meanwhile is brought in line (``apply_session`` heals toward Stripe).
    """
    now = datetime.now(UTC)
    order: Order | None = await db.scalar(
        select(Order)
        .where(
            Order.user_id == user.id,
            Order.status == OrderStatus.OPEN,
            Order.stripe_session_id.is_not(None),
            Order.pack_id == pack.id,
            Order.amount == pack.price_minor,
            Order.currency == pack.currency,
            Order.units == pack.units,
            Order.bonus == pack.bonus,
            Order.asset == pack.asset,
            Order.locale == language_of(locale),
            Order.created_at > now - timedelta(seconds=clamp_expiry(settings.checkout_expiry_seconds)),
        )
        .order_by(Order.id.desc())
        .limit(1)
    )
    if order is None or order.stripe_session_id is None:
        return None
    try:
        session = as_mapping(await gateway.retrieve_session(order.stripe_session_id))
    except PaymentProviderError as exc:
        log.warning("checkout.reuse_check_failed", order_id=order.id, code=exc.code)
        return None
    expires_at = int(session.get("expires_at") or 0)
    if session.get("status") == "open" and session.get("url") and expires_at > now.timestamp() + REUSE_MARGIN:
        log.info("checkout.reused", order_id=order.id, session_id=order.stripe_session_id)
        return Started(order=order, url=str(session["url"]))
    if session.get("status") != "open":
        await apply_session(db, order, session)
    return None


async def enforce_caps(db: AsyncSession, settings: Settings, user_id: int) -> None:
    """Refuse a new order past either cap; one counting statement, run under :func:`lock_buyer`.

    Orders older than the longest session lifetime are not counted as open: their sessions
    are expired at Stripe even if the webhook saying so was lost.
    """
    now = datetime.now(UTC)
    open_since = now - timedelta(seconds=clamp_expiry(settings.checkout_expiry_seconds))
    hour_ago = now - HOUR
    recent = Order.created_at > hour_ago
    open_count, hour_count, oldest = (
        await db.execute(
            select(
                func.count(case((Order.status.in_([OrderStatus.PENDING, OrderStatus.OPEN]), 1))),
                func.count(case((recent, 1))),
                func.min(case((recent, Order.created_at))),
            ).where(Order.user_id == user_id, Order.created_at > min(open_since, hour_ago))
        )
    ).one()
    if open_count >= settings.checkout_max_open:
        raise CheckoutLimited("open", settings.checkout_max_open, retry_after=60)
    if hour_count >= settings.checkout_max_per_hour:
        if isinstance(oldest, str):  # SQLite hands back the stored text for an aggregate
            oldest = datetime.fromisoformat(oldest)
        if isinstance(oldest, datetime) and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        wait = (oldest + HOUR - now).total_seconds() if isinstance(oldest, datetime) else HOUR.total_seconds()
        raise CheckoutLimited("hour", settings.checkout_max_per_hour, retry_after=max(1, int(wait) + 1))


async def start_checkout(
    db: AsyncSession,
    gateway: StripeGateway,
    settings: Settings,
    *,
    user: User,
    pack: Pack,
    locale: str,
) -> Started:
    """Send the buyer back to their open session for this pack, or make the order, then its session.

    Raises :class:`CheckoutLimited` past a cap, and :class:`CheckoutFailed` (the order marked
    failed) on a Stripe error. The order is flushed before Stripe is called because its id names
    the session's idempotency key and metadata.
    """
    await lock_buyer(db, user.id)
    reused = await reusable_session(db, gateway, settings, user=user, pack=pack, locale=locale)
    if reused is not None:
        return reused
    await enforce_caps(db, settings, user.id)
    order = snapshot_order(user, pack, locale)
    db.add(order)
    await db.flush()
    try:
        session = await with_customer(
            db,
            gateway,
            user,
            lambda customer, lost: gateway.create_checkout_session(
                order,
                pack,
                customer=customer,
                after_lost_customer=lost,
                locale=order.locale,
                base_url=settings.base_url,
                expires_in=settings.checkout_expiry_seconds,
            ),
        )
    except PaymentProviderError as exc:
        log.warning("checkout.stripe_failed", order_id=order.id, code=exc.code, detail=exc.detail)
        await mark_failed(db, order, exc.code)
        raise CheckoutFailed(order, exc) from exc
    order.stripe_session_id = session.id
    await db.flush()
    await _transition(db, order, OrderStatus.OPEN)
    log.info("checkout.started", order_id=order.id, session_id=session.id, pack=pack.id)
    return Started(order=order, url=str(session.url))


async def order_of(
    db: AsyncSession, *, order_id: int | None = None, session_id: str | None = None
) -> Order | None:
    if order_id is not None:
        # Outside BIGINT the database would raise (a 500 on PostgreSQL): no such order.
        return await db.get(Order, order_id) if 0 < order_id < 2**63 else None
    if session_id:
        found: Order | None = await db.scalar(select(Order).where(Order.stripe_session_id == session_id))
        return found
    return None


@lru_cache(maxsize=1)
def _claim_check() -> Any:
    """Built once (the money writer runs it too: app.db.compiled)."""
    orders = ORDERS.c
    return (
        update(ORDERS)
        .where(
            orders.id == bindparam("oid"),
            orders.status.in_([literal(value) for value in OrderStatus.waiting_values()]),
            orders.stripe_session_id.is_not(None),
            or_(
                orders.checked_at.is_(None),
                orders.checked_at < bindparam("cutoff", type_=orders.checked_at.type),
            ),
        )
        .values(checked_at=bindparam("now", type_=orders.checked_at.type), updated_at=bindparam("now"))
        .returning(orders.id)
    )


def claim_check_on(conn: SqlConnection, *, order_id: int, interval_seconds: float) -> bool:
    """Take this order's turn to ask Stripe; the conditional UPDATE lets one caller in per interval."""
    now = datetime.now(UTC)
    cutoff = now - timedelta(seconds=interval_seconds)
    row = conn.execute(_claim_check(), {"oid": order_id, "now": now, "cutoff": cutoff}).first()
    return row is not None


async def claim_check(db: AsyncSession, order_id: int, *, interval: timedelta = CHECK_INTERVAL) -> bool:
    """:func:`claim_check_on` in the request's transaction."""
    return await run(db, claim_check_on, order_id=order_id, interval_seconds=interval.total_seconds())


async def apply_session(
    db: AsyncSession, order: Order, session: dict[str, Any], *, writer: Writer | None = None
) -> str:
    """Bring ``order`` in line with what Stripe says about its session; returns what happened.

    With ``writer`` (a read-only request on SQLite) the change is an operation of the money
    writer, committed before this returns, and the request's read snapshot is ended so that
    ``order`` is re-read as the writer left it.
    """
    # fulfil_checkout reads every session state: paid → credit, complete+unpaid → awaiting,
    # expired → expired, open → nothing.
    if writer is None:
        result = await _money(db, order, fulfil_checkout, session)
    else:
        result = await writer.call(partial(fulfil_checkout, session_obj=session))
        await db.rollback()  # it read nothing it keeps; the next read starts a fresh snapshot
        await db.refresh(order)
    return str(result.outcome)


async def refresh_from_stripe(
    db: AsyncSession,
    gateway: StripeGateway,
    order: Order,
    *,
    interval: timedelta = CHECK_INTERVAL,
    writer: Writer | None = None,
) -> str | None:
    """Heal a lost webhook while the buyer waits: at most once per ``interval`` per order.

    ``writer``: the request only reads (SQLite's deferred transaction, which must not write);
    the check's claim and the healing go through the money writer instead.
    """
    if not OrderStatus(order.status).waiting or not order.stripe_session_id:
        return None
    checked = order.checked_at
    if checked is not None and checked > datetime.now(UTC) - interval:
        return None  # asked moments ago (the UPDATE below decides races; this spares it the write)
    if writer is None:
        claimed = await claim_check(db, order.id, interval=interval)
    else:
        claimed = await writer.call(
            partial(claim_check_on, order_id=order.id, interval_seconds=interval.total_seconds())
        )
    if not claimed:
        return None
    try:
        session = await gateway.retrieve_session(order.stripe_session_id)
    except PaymentProviderError as exc:
        log.warning("checkout.refresh_failed", order_id=order.id, code=exc.code)
        return None
    outcome = await apply_session(db, order, as_mapping(session), writer=writer)
    log.info("checkout.refreshed", order_id=order.id, outcome=outcome)
    return outcome


def cancellable(order: Order) -> bool:
    """Not paid for yet, not even by a bank debit on its way: the buyer may still back out."""
    return not OrderStatus(order.status).final and order.status != OrderStatus.AWAITING_PAYMENT


async def cancel_order(db: AsyncSession, gateway: StripeGateway, order: Order) -> str:
    """The buyer came back through the cancel link: close the session unless it was paid meanwhile.

    Stripe decides: an open session is expired there first, and only then is the order marked
    canceled, so a payment can never land on a canceled order.
    """
    if not cancellable(order):
        return "unchanged"
    if not order.stripe_session_id:
        await _transition(db, order, OrderStatus.CANCELED, reason="canceled_by_buyer")
        return "canceled"
    # Hold the row until we commit: the ``checkout.session.expired`` webhook our expiry causes
    # must not mark it expired first (PostgreSQL; SQLite's single writer already serialises).
    await db.execute(select(Order.id).where(Order.id == order.id).with_for_update())
    session = as_mapping(await gateway.retrieve_session(order.stripe_session_id))
    if session.get("status") == "open":
        try:
            session = as_mapping(await gateway.expire_session(order.stripe_session_id))
        except ProviderRejected:
            # Paid (or expired) between our two calls: Stripe's current answer decides.
            session = as_mapping(await gateway.retrieve_session(order.stripe_session_id))
    if session.get("status") == "expired":
        await _transition(db, order, OrderStatus.CANCELED, reason="canceled_by_buyer")
        return "canceled"
    return await apply_session(db, order, session)


def buy_again_pack(catalogue: Catalogue, order: Order) -> Pack | None:
    """The same pack, if it is still on sale."""
    return catalogue.get_active(order.pack_id)
