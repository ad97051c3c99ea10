"""Buyer API keys (stored hashed) and their use per cap period."""

from __future__ import annotations

from datetime import datetime

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, ForeignKey, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import BigIntBase

__all__ = ("BuyerKey", "KeyUsage")


class BuyerKey(BigIntBase):
    """One buyer's key for one asset, with an optional cap per day or month and an expiry."""

    __tablename__ = "buyer_key"

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"), index=True)
    asset: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(32))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    cap_units: Mapped[int | None] = mapped_column(BigInteger, default=None)
    cap_period: Mapped[str | None] = mapped_column(String(8), default=None)
    """``day`` or ``month`` (UTC), with ``cap_units``; None: no cap."""
    expires_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    """Unix seconds; None: never."""
    used_units: Mapped[int] = mapped_column(BigInteger, default=0)
    """Units charged through this key in all."""
    calls: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), server_default=func.now())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class KeyUsage(BigIntBase):
    """Units charged through one key in one cap period; the cap is checked in its UPDATE."""

    __tablename__ = "buyer_key_usage"
    __table_args__ = (Index("uq_buyer_key_usage_key_period", "key_id", "period", unique=True),)

    key_id: Mapped[int] = mapped_column(ForeignKey("buyer_key.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(10))
    """``2026-12-01`` for a daily cap, ``2026-12`` for a monthly one."""
    units: Mapped[int] = mapped_column(BigInteger, default=0)
