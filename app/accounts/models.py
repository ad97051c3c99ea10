"""Buyers and admins."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import BigIntAuditBase, NaturalKeyBase


class User(BigIntAuditBase):
    """A person who signs in with email and password (argon2 hash, never the password)."""

    __tablename__ = "user_account"

    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(default=False)
    locale: Mapped[str | None] = mapped_column(String(16), default=None)
    external_id: Mapped[str | None] = mapped_column(String(255), unique=True, default=None)
    """The host application's id for this person (``PUT /api/v1/customers/{external_id}``)."""
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    customer_metadata: Mapped[str | None] = mapped_column(Text, default=None)
    """The host's metadata for this customer, as JSON text."""
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Sessions carry the epoch they were signed in at; a password reset bumps it, which signs
    every older session out (app/accounts/auth.py) without having to find them in the store."""
    email_verified_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    """Unix seconds; with ``STOREFRONT_VERIFY_EMAIL`` on, buying needs it (app/accounts/verification.py)."""
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), unique=True, index=True, default=None)
    """The buyer's one Stripe Customer, made at the first checkout (app/checkout/customers.py)."""
    stripe_customer_email: Mapped[str | None] = mapped_column(String(320), default=None)
    """The email last sent to that Customer: a checkout updates the Customer when ``email`` differs."""


class SignInLink(NaturalKeyBase):
    """A single-use link that signs a host's customer into the shop; only its hash is stored."""

    __tablename__ = "sign_in_link"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    next_path: Mapped[str] = mapped_column(String(500), default="/")
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    """Unix seconds; a link is used by one ``UPDATE ... WHERE used_at IS NULL AND expires_at > now``."""
    used_at: Mapped[int | None] = mapped_column(BigInteger, default=None)


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


class AccountToken(NaturalKeyBase):
    """A single-use emailed link (password reset, email verification); only its hash is stored."""

    __tablename__ = "account_token"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16))
    """``reset`` or ``verify``: a token is good for its own purpose only."""
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    """Unix seconds; spent by one ``UPDATE ... WHERE used_at IS NULL AND expires_at > now``."""
    used_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
