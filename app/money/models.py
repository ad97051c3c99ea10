"""The money tables: orders, the append-only ledger with its balances, credit lots, holds and
Stripe's events.

Invariants, for every (user, asset), kept in the same transaction as every change:

* ``balance.available == sum(entry.units)``: the net balance (spendable minus debt);
  likewise ``held`` (open disputes), ``reserved`` (open holds) and ``debt`` with their columns;
* ``sum(lot.remaining) - balance.debt == balance.available``, each lot's ``remaining`` being
  its ``units`` plus the movements of the entries that touched it;
* ``balance.debt > 0`` only while every lot is empty (a new credit pays the debt first), so
  ``available < 0`` exactly when the buyer owes units and spendable is ``max(available, 0)``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import BigIntAuditBase, BigIntBase, NaturalKeyBase

__all__ = (
    "Balance",
    "CreditHold",
    "CreditLot",
    "HoldStatus",
    "LedgerEntry",
    "LotKind",
    "LotMovement",
    "Order",
    "OrderStatus",
    "StripeEvent",
)


class OrderStatus(StrEnum):
    """Where an order stands. Final states never change back (see ``app.money.orders``)."""

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

    @property
    def final(self) -> bool:
        """Nothing the buyer waits for can happen any more (a late Stripe success aside)."""
        return self not in _WAITING

    @property
    def waiting(self) -> bool:
        """Money may still come in: the success page polls and reconciliation re-checks."""
        return self in _WAITING

    @property
    def settled(self) -> bool:
        """No move leaves this state at all (a canceled order may still turn paid): cacheable."""
        return self is OrderStatus.PAID

    @classmethod
    def waiting_values(cls) -> list[str]:
        """The waiting states as stored, for ``IN (...)`` filters."""
        return [status.value for status in cls if status.waiting]


_WAITING = frozenset({OrderStatus.PENDING, OrderStatus.OPEN, OrderStatus.AWAITING_PAYMENT})


class Order(BigIntAuditBase):
    """One purchase attempt. Prices are copied from the catalogue when the order is made."""

    __tablename__ = "purchase_order"
    __table_args__ = (
        # The admin console's filters (state, pack, date range; any of them) count and pick a
        # page of ids from an index alone (app/admin/order_queries.py, bench/admin_bench.py).
        Index("ix_purchase_order_created_at", "created_at"),
        Index("ix_purchase_order_status_created", "status", "created_at"),
        Index("ix_purchase_order_status_pack_created", "status", "pack_id", "created_at"),
        Index("ix_purchase_order_pack_created", "pack_id", "created_at"),
        # Covers the admin dashboard's revenue (what was paid) per currency and day: no table reads.
        Index("ix_purchase_order_revenue", "status", "fulfilled_at", "currency", "amount", "amount_paid"),
    )

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
    status: Mapped[str] = mapped_column(String(32), default=OrderStatus.PENDING)
    status_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    stripe_session_id: Mapped[str | None] = mapped_column(String(255), unique=True, default=None)
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(255), index=True, default=None)
    fulfilled_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    checked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    """Last time the success page or reconciliation asked Stripe about this order."""
    credit_expires_days: Mapped[int | None] = mapped_column(Integer, default=None)
    """The pack's ``expires_after_days`` when the order was made: the bought lot expires then."""
    amount_discount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    """What promotion codes took off (the paid session's ``total_details``); NULL before payment."""
    amount_tax: Mapped[int | None] = mapped_column(BigInteger, default=None)
    """The tax Stripe computed (included in or added to ``amount``); NULL before payment."""
    amount_paid: Mapped[int | None] = mapped_column(BigInteger, default=None)
    """What the buyer was charged (``amount_total``); refunds take units back in proportion to it."""

    @property
    def total_units(self) -> int:
        return self.units + self.bonus

    @property
    def paid(self) -> int:
        """What the buyer was charged; the snapshot for orders paid before it was recorded."""
        return self.amount if self.amount_paid is None else self.amount_paid


class LedgerEntry(BigIntBase):
    """One change of a buyer's balance. Never updated or deleted."""

    __tablename__ = "ledger_entry"
    __table_args__ = (Index("ix_ledger_entry_user_asset_id", "user_id", "asset", "id"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"))
    asset: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    units: Mapped[int] = mapped_column(BigInteger)
    """Signed change of the net balance (spendable minus debt)."""
    held_units: Mapped[int] = mapped_column(BigInteger, default=0)
    """Signed change of the units held by an open dispute."""
    reserved_units: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """Signed change of the units reserved by open holds."""
    debt_units: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """Signed change of the debt (units taken back after they were spent)."""
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
    details: Mapped[str | None] = mapped_column(Text, default=None)
    """The host's ``metadata`` of a debit, grant or hold, as JSON text."""
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), server_default=func.now())


class Balance(BigIntBase):
    """Current balance of one asset for one buyer; the sum of its ledger entries."""

    __tablename__ = "balance"
    __table_args__ = (Index("uq_balance_user_asset", "user_id", "asset", unique=True),)

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"))
    asset: Mapped[str] = mapped_column(String(64))
    available: Mapped[int] = mapped_column(BigInteger, default=0)
    """Net balance: spendable units, or minus the debt (never both, see the module's invariants)."""
    held: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    debt: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    next_expiry: Mapped[int | None] = mapped_column(BigInteger, default=None)
    """Unix seconds of the soonest expiry of a non-empty lot or an open hold (None: nothing expires).

    A debit's conditional UPDATE requires it in the future, so units that have expired are never
    spent; when it has passed, the expiries are posted first (``app.money.credits``).
    """


class LotKind(StrEnum):
    """Where a lot's units came from; promotional units are spent before paid ones."""

    PAID = "paid"
    PROMOTIONAL = "promotional"


class CreditLot(BigIntBase):
    """Units that arrived together (one purchase or one grant), spent and expired as a unit."""

    __tablename__ = "credit_lot"
    __table_args__ = (
        CheckConstraint("remaining >= 0", name="remaining_not_negative"),
        Index("ix_credit_lot_user_asset_remaining", "user_id", "asset", "remaining"),
    )

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"))
    asset: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    units: Mapped[int] = mapped_column(BigInteger)
    """Units the lot was made with (before any debt it paid)."""
    remaining: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    """Unix seconds after which the remainder leaves through an ``expiry`` entry; None: never."""
    order_id: Mapped[int | None] = mapped_column(
        ForeignKey("purchase_order.id", ondelete="RESTRICT"), unique=True, default=None
    )
    entry_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    """The ledger entry that made the lot."""
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), server_default=func.now())


class LotMovement(BigIntBase):
    """How much one ledger entry took from (negative) or gave back to (positive) one lot."""

    __tablename__ = "lot_movement"
    __table_args__ = (Index("uq_lot_movement_entry_lot", "entry_id", "lot_id", unique=True),)

    entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entry.id", ondelete="RESTRICT"))
    lot_id: Mapped[int] = mapped_column(ForeignKey("credit_lot.id", ondelete="RESTRICT"), index=True)
    units: Mapped[int] = mapped_column(BigInteger)


class HoldStatus(StrEnum):
    OPEN = "open"
    CAPTURED = "captured"
    RELEASED = "released"
    EXPIRED = "expired"


class CreditHold(NaturalKeyBase):
    """Units reserved for a host's operation, captured (spent) or released later; expires itself."""

    __tablename__ = "credit_hold"
    __table_args__ = (Index("ix_credit_hold_status_expires", "status", "expires_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    """``hold_`` and random characters: unguessable, so one host cannot probe another's holds."""
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"), index=True)
    asset: Mapped[str] = mapped_column(String(64))
    units: Mapped[int] = mapped_column(BigInteger)
    captured: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16), default=HoldStatus.OPEN)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    """Unix seconds; an open hold past it is released by the next write that sees it."""
    entry_id: Mapped[int] = mapped_column(BigInteger)
    """The ledger entry that reserved the units (its lot movements say where they came from)."""
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), server_default=func.now())
    closed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class StripeEvent(NaturalKeyBase):
    """A Stripe event, stored under its unique id in the same transaction as its effect."""

    __tablename__ = "stripe_event"
    __table_args__ = (
        # Events whose effect failed (outcome "failed: ..."): few, counted and listed by the admin
        # console without reading every stored event (see app/admin/dashboard.py).
        Index(
            "ix_stripe_event_failed",
            "received_at",
            sqlite_where=text("outcome LIKE 'failed: %'"),
            postgresql_where=text("outcome LIKE 'failed: %'"),
        ),
    )

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
    received_at: Mapped[datetime] = mapped_column(
        DateTimeUTC(timezone=True), server_default=func.now(), index=True
    )
