"""Orders: a snapshot of the pack a buyer asked for and where its payment stands."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import BigIntAuditBase


class OrderStatus(StrEnum):
    """Where an order stands. Final states never change back (see ``app.checkout.states``)."""

    PENDING = "pending"
    """Made, Checkout Session not yet created."""
    OPEN = "open"
    """Checkout Session created; the buyer is on Stripe's page."""
    AWAITING_PAYMENT = "awaiting_payment"
    """Completed with a delayed method (bank debit); money not yet in."""
    PAID = "paid"
    """Paid and credited."""
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELED = "canceled"
    NEEDS_REVIEW = "needs_review"
    """Stripe's amount or currency differs from the snapshot: nothing credited, a human looks."""


class Order(BigIntAuditBase):
    """One purchase attempt. Prices are copied from the catalogue when the order is made."""

    __tablename__ = "purchase_order"

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"), index=True)
    pack_id: Mapped[str] = mapped_column(String(64))
    pack_name: Mapped[str] = mapped_column(String(200))
    asset: Mapped[str] = mapped_column(String(64))
    units: Mapped[int] = mapped_column(BigInteger)
    bonus: Mapped[int] = mapped_column(BigInteger, default=0)
    amount: Mapped[int] = mapped_column(BigInteger)
    """Price in the currency's minor units."""
    currency: Mapped[str] = mapped_column(String(3))
    locale: Mapped[str] = mapped_column(String(16), default="en")
    status: Mapped[str] = mapped_column(String(32), default=OrderStatus.PENDING, index=True)
    status_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    stripe_session_id: Mapped[str | None] = mapped_column(String(255), unique=True, default=None)
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(255), index=True, default=None)
    fulfilled_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    checked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    """Last time the success page or reconciliation asked Stripe about this order."""

    @property
    def total_units(self) -> int:
        return self.units + self.bonus
