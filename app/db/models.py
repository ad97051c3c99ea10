"""Imports every model so that the metadata is complete (Alembic, tests)."""

from __future__ import annotations

from app.accounts.models import RateLimitCounter, User
from app.db.base import KeyValueStore, orm_registry
from app.db.installation import Installation
from app.money.models import Balance, LedgerEntry, Order, OrderStatus, StripeEvent
from app.reconcile.models import JobLease, SyncCursor

metadata = orm_registry.metadata

__all__ = (
    "Balance",
    "Installation",
    "JobLease",
    "KeyValueStore",
    "LedgerEntry",
    "Order",
    "OrderStatus",
    "RateLimitCounter",
    "StripeEvent",
    "SyncCursor",
    "User",
    "metadata",
)
