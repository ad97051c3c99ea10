"""Bookkeeping for background jobs that must run on one replica at a time."""

from __future__ import annotations

from datetime import datetime

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import NaturalKeyBase


class JobLease(NaturalKeyBase):
    """Who may run a job until when; taken with a conditional update, never check-then-act."""

    __tablename__ = "job_lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


class SyncCursor(NaturalKeyBase):
    """How far reconciliation has read Stripe's event list."""

    __tablename__ = "sync_cursor"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
