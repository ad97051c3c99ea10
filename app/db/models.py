"""Imports every model so that the metadata is complete (Alembic, tests)."""

from __future__ import annotations

from app.accounts.models import AccountToken, RateLimitCounter, SignInLink, User
from app.admin.models import AuditEntry
from app.api.models import IdempotentRequest, ServerKey
from app.buyer_keys.models import BuyerKey, KeyUsage
from app.db.base import KeyValueStore, orm_registry
from app.db.installation import Installation
from app.host_webhooks.models import DeliveryAttempt, HostDelivery, HostEvent, WebhookEndpoint
from app.mail.models import MailMessage
from app.money.models import (
    Balance,
    CreditHold,
    CreditLot,
    LedgerEntry,
    LotMovement,
    Order,
    OrderStatus,
    StripeEvent,
)
from app.reconcile.models import JobLease, ReconcileRun, SyncCursor
from app.webhooks.models import WebhookRejection

metadata = orm_registry.metadata

__all__ = (
    "AccountToken",
    "AuditEntry",
    "Balance",
    "BuyerKey",
    "CreditHold",
    "CreditLot",
    "DeliveryAttempt",
    "HostDelivery",
    "HostEvent",
    "IdempotentRequest",
    "Installation",
    "JobLease",
    "KeyUsage",
    "KeyValueStore",
    "LedgerEntry",
    "LotMovement",
    "MailMessage",
    "Order",
    "OrderStatus",
    "RateLimitCounter",
    "ReconcileRun",
    "ServerKey",
    "SignInLink",
    "StripeEvent",
    "SyncCursor",
    "User",
    "WebhookEndpoint",
    "WebhookRejection",
    "metadata",
)
