"""Each buyer is one Stripe Customer, made at their first checkout and kept on the account.

Exactly one, whoever races: the Customer is created with an idempotency key derived from the
buyer (Stripe replays the first answer to a second request), and the id is stored by a
conditional UPDATE that only fills an empty column, so a late writer cannot replace it.
Stripe keeps an idempotency key for 24 hours: a Customer made by a transaction that then
rolled back is found again by the next checkout within that time (the same key); later, a
second Customer would be made for that buyer, harmless but unused.

The Customer's email is where Stripe sends receipts, so it follows the account's: the email
last sent is kept on the account (``stripe_customer_email``) and a checkout whose buyer's email
differs (changed through the host API, or a Customer made before it was kept) updates the
Customer first, costing a round trip only then.

A Customer deleted at Stripe (from the dashboard, say) would otherwise fail every later checkout
of that buyer: when Stripe answers that it has no such Customer, :func:`with_customer` forgets
the stored id, makes a replacement once (its own idempotency key names the deleted Customer) and
tries again, so the buyer simply gets their Checkout page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.stripe_gateway import CustomerMissing, StripeGateway

log = structlog.get_logger(__name__)

T = TypeVar("T")


async def with_customer(
    db: AsyncSession, gateway: StripeGateway, user: User, use: Callable[[str, str | None], Awaitable[T]]
) -> T:
    """``use(customer, None)`` with the buyer's Customer; if Stripe lost it, once more with a new
    one as ``use(new, lost)`` (the call's idempotency key must then differ: Stripe may have kept
    the refusal under the first).

    Raises ``PaymentProviderError`` as :func:`customer_for` and ``use`` do (a replacement that
    is missing too is not retried again).
    """
    customer = await customer_for(db, gateway, user)
    try:
        return await use(customer, None)
    except CustomerMissing:
        replacement = await replace_customer(db, gateway, user, customer)
        return await use(replacement, customer)


async def customer_for(db: AsyncSession, gateway: StripeGateway, user: User) -> str:
    """The buyer's Customer id, made (or given their current email) and stored if needed.

    Writes in the caller's transaction; raises ``PaymentProviderError`` when Stripe refuses or
    cannot be reached.
    """
    customer = user.stripe_customer_id or await _make(db, gateway, user)
    if user.stripe_customer_email != user.email:
        try:
            await gateway.update_customer_email(customer, user.email)
        except CustomerMissing:
            return await replace_customer(db, gateway, user, customer)
        await db.execute(
            update(User)
            .where(User.id == user.id)
            .values(stripe_customer_email=user.email)
            .execution_options(synchronize_session=False)
        )
        user.stripe_customer_email = user.email
        log.info("checkout.customer_email_updated", user_id=user.id, customer=customer)
    return customer


async def replace_customer(db: AsyncSession, gateway: StripeGateway, user: User, gone: str) -> str:
    """Forget ``gone`` (Stripe has no such Customer) and make the buyer a new one, with their email."""
    log.warning("checkout.customer_missing", user_id=user.id, customer=gone)
    await db.execute(
        update(User)
        .where(User.id == user.id, User.stripe_customer_id == gone)
        .values(stripe_customer_id=None, stripe_customer_email=None)
        .execution_options(synchronize_session=False)
    )
    await db.refresh(user, ["stripe_customer_id", "stripe_customer_email"])
    if user.stripe_customer_id is not None:
        # Someone else stored another Customer meanwhile: that one is kept.
        return await customer_for(db, gateway, user)
    return await _make(db, gateway, user, replacing=gone)


async def _make(db: AsyncSession, gateway: StripeGateway, user: User, replacing: str | None = None) -> str:
    """Create the Customer (with the account's email) and store it unless a racer stored it first."""
    made = await gateway.create_customer(
        user_id=user.id,
        email=user.email,
        name=user.name,
        created_at=user.created_at.timestamp() if user.created_at else None,
        replacing=replacing,
    )
    await db.execute(
        update(User)
        .where(User.id == user.id, User.stripe_customer_id.is_(None))
        .values(stripe_customer_id=made, stripe_customer_email=user.email)
        .execution_options(synchronize_session=False)
    )
    # Whoever filled the column first decides (the same id, thanks to the idempotency key).
    await db.refresh(user, ["stripe_customer_id", "stripe_customer_email"])
    stored = user.stripe_customer_id
    if stored != made:
        log.warning("checkout.customer_raced", user_id=user.id, made=made, kept=stored)
    else:
        log.info("checkout.customer_made", user_id=user.id, customer=made)
    return str(stored or made)
