"""Refused webhook deliveries per minute and reason, for the admin dashboard's webhook health.

The Prometheus counter (``storefront_webhook_rejected_total``) is per process and forgets on
restart; this table is what every replica adds to and the console reads ("in the last hour").
"""

from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import NaturalKeyBase

__all__ = ("WebhookRejection",)


class WebhookRejection(NaturalKeyBase):
    """How many deliveries were refused for ``reason`` in the minute starting at ``minute``."""

    __tablename__ = "webhook_rejection"

    minute: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    """Unix seconds of the minute's start."""
    reason: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
