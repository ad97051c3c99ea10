"""Host webhook endpoints, the outbox of events, and the log of every delivery attempt."""

from __future__ import annotations

from datetime import datetime

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import BigIntBase, NaturalKeyBase

__all__ = ("DeliveryAttempt", "HostDelivery", "HostEvent", "WebhookEndpoint")


class WebhookEndpoint(BigIntBase):
    """A URL of a host application and the event types it wants, with its signing secret."""

    __tablename__ = "webhook_endpoint"

    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(100))
    """``whsec_...``: the HMAC key of ``Storefront-Signature``."""
    previous_secret: Mapped[str | None] = mapped_column(String(100), default=None)
    """The secret before the last rotation: requests are signed with both until ``previous_until``."""
    previous_until: Mapped[int | None] = mapped_column(BigInteger, default=None)
    """Unix seconds."""
    events: Mapped[str] = mapped_column(String(500))
    """Comma-separated event types, or ``*``."""
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), server_default=func.now())
    disabled_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class HostEvent(NaturalKeyBase):
    """One event for hosts, written in the same transaction as the ledger change it reports."""

    __tablename__ = "host_event"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    """``evt_`` and random characters."""
    type: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(BigInteger, index=True, default=None)
    payload: Mapped[str] = mapped_column(Text)
    """The JSON body sent to endpoints."""
    created: Mapped[int] = mapped_column(BigInteger, index=True)
    """Unix seconds."""
    fanned_out: Mapped[bool] = mapped_column(default=False, index=True)
    """Whether deliveries were made for it (the deliverer fans out new events to endpoints)."""


class HostDelivery(BigIntBase):
    """One event to one endpoint: delivered at least once, retried with backoff for a day."""

    __tablename__ = "host_delivery"
    __table_args__ = (
        Index("uq_host_delivery_event_endpoint", "event_id", "endpoint_id", unique=True),
        Index("ix_host_delivery_status_next", "status", "next_attempt_at"),
    )

    event_id: Mapped[str] = mapped_column(ForeignKey("host_event.id", ondelete="CASCADE"))
    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_endpoint.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """``pending``, ``delivered``, ``failed`` (gave up after a day) or ``canceled`` (endpoint removed)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """Attempts since the delivery was (re)scheduled: the backoff's step. The log keeps them all."""
    next_attempt_at: Mapped[int] = mapped_column(BigInteger)
    """Unix seconds; a deliverer that claims the row pushes it past its HTTP call (a lease)."""
    give_up_at: Mapped[int] = mapped_column(BigInteger)
    """Unix seconds: no retry is scheduled after it (a day after fan-out or a redelivery)."""
    claim: Mapped[str | None] = mapped_column(String(32), default=None)
    """The token of the deliverer attempting it now; only that one may record the outcome."""
    last_status: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class DeliveryAttempt(BigIntBase):
    """The log: one row per HTTP attempt of a delivery."""

    __tablename__ = "host_delivery_attempt"

    delivery_id: Mapped[int] = mapped_column(ForeignKey("host_delivery.id", ondelete="CASCADE"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), server_default=func.now())
    status: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str | None] = mapped_column(String(500), default=None)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
