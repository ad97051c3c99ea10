"""Imports every model so that the metadata is complete (Alembic, tests)."""

from __future__ import annotations

from app.accounts.models import User
from app.checkout.models import Order, OrderStatus
from app.db.base import KeyValueStore, orm_registry
from app.ledger.models import Balance, LedgerEntry
from app.reconcile.models import JobLease, SyncCursor
from app.webhooks.models import StripeEvent

metadata = orm_registry.metadata

__all__ = (
    "Balance",
    "JobLease",
    "KeyValueStore",
    "LedgerEntry",
    "Order",
    "OrderStatus",
    "StripeEvent",
    "SyncCursor",
    "User",
    "metadata",
)
