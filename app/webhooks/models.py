"""Stripe events we have processed; the unique id makes each one count once."""

from __future__ import annotations

from datetime import datetime

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import NaturalKeyBase


class StripeEvent(NaturalKeyBase):
    """An event stored in the same transaction as its effect."""

    __tablename__ = "stripe_event"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    created: Mapped[int] = mapped_column(BigInteger, index=True)
    """Stripe's Unix timestamp of the event."""
    source: Mapped[str] = mapped_column(String(16))
    """``webhook`` or ``reconcile``: who brought it in."""
    outcome: Mapped[str] = mapped_column(String(200), default="")
    payload: Mapped[str] = mapped_column(Text)
    pending_payment_intent_id: Mapped[str | None] = mapped_column(String(255), index=True, default=None)
    """Set while the event waits for its order to be credited (a refund or dispute that came first)."""
    received_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), server_default=func.now())
