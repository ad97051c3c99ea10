"""The append-only ledger and the balances it keeps.

Invariant: for every (user, asset), ``balance.available == sum(entry.units)`` and
``balance.held == sum(entry.held_units)``; both change in the same transaction.
"""

from __future__ import annotations

from datetime import datetime

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, ForeignKey, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import BigIntBase


class LedgerEntry(BigIntBase):
    """One change of a buyer's balance. Never updated or deleted."""

    __tablename__ = "ledger_entry"
    __table_args__ = (Index("ix_ledger_entry_user_asset_id", "user_id", "asset", "id"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"))
    asset: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    units: Mapped[int] = mapped_column(BigInteger)
    """Signed change of the spendable balance."""
    held_units: Mapped[int] = mapped_column(BigInteger, default=0)
    """Signed change of the units held by an open dispute."""
    balance_after: Mapped[int] = mapped_column(BigInteger)
    held_after: Mapped[int] = mapped_column(BigInteger, default=0)
    order_id: Mapped[int | None] = mapped_column(
        ForeignKey("purchase_order.id", ondelete="RESTRICT"), index=True, default=None
    )
    amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    """Money behind the entry in the order's minor units (e.g. the refunded amount)."""
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    """Why this entry exists exactly once, e.g. ``fulfil:cs_...`` or ``refund:re_...``."""
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), server_default=func.now())


class Balance(BigIntBase):
    """Current balance of one asset for one buyer; the sum of its ledger entries."""

    __tablename__ = "balance"
    __table_args__ = (Index("uq_balance_user_asset", "user_id", "asset", unique=True),)

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"))
    asset: Mapped[str] = mapped_column(String(64))
    available: Mapped[int] = mapped_column(BigInteger, default=0)
    held: Mapped[int] = mapped_column(BigInteger, default=0)
