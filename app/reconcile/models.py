"""Bookkeeping for background jobs that must run on one replica at a time."""

from __future__ import annotations

from datetime import datetime

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import BigIntBase, NaturalKeyBase


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


class ReconcileRun(BigIntBase):
    """What one reconciliation run did, kept so the admin dashboard can say when it last ran."""

    __tablename__ = "reconcile_run"

    started_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    events_listed: Mapped[int] = mapped_column(Integer)
    replayed: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    orders_checked: Mapped[int] = mapped_column(Integer)
    orders_fixed: Mapped[int] = mapped_column(Integer)
    summary: Mapped[str] = mapped_column(Text)
    """The run's report, one line per event replayed or order fixed (``ReconcileSummary.lines``)."""
