"""Shared declarative bases: every table of the shop derives from these."""

from __future__ import annotations

from advanced_alchemy.base import BigIntAuditBase, BigIntBase, DefaultBase, orm_registry
from advanced_alchemy.extensions.litestar.store import StoreModelMixin

__all__ = ("BigIntAuditBase", "BigIntBase", "KeyValueStore", "NaturalKeyBase", "orm_registry")

NaturalKeyBase = DefaultBase
"""Base for tables whose primary key is a natural one (Stripe ids, job names)."""


class KeyValueStore(StoreModelMixin):
    """Rows behind the server-side session store (shared by every replica, survives restarts)."""

    __tablename__ = "kv_store"
