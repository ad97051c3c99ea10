"""Buyers and admins."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import BigIntAuditBase, NaturalKeyBase


class User(BigIntAuditBase):
    """A person who signs in with email and password (argon2 hash, never the password)."""

    __tablename__ = "user_account"

    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(default=False)
    locale: Mapped[str | None] = mapped_column(String(16), default=None)


class RateLimitCounter(NaturalKeyBase):
    """Attempts per key (client address or account) in the current fixed window.

    Counted by one ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` (app/accounts/limits.py),
    so concurrent requests on every replica see each other's hits.
    """

    __tablename__ = "rate_limit_counter"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    hits: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    """Unix seconds at which this window ends (an integer compares the same on both databases)."""
