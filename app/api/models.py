"""Server keys of host applications and the answers kept for ``Idempotency-Key`` replays."""

from __future__ import annotations

from datetime import datetime

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import BigIntBase, NaturalKeyBase

__all__ = ("IdempotentRequest", "ServerKey")


class ServerKey(BigIntBase):
    """A host application's key: ``sf_live_``/``sf_test_`` + secret, stored as its SHA-256 only."""

    __tablename__ = "server_key"

    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(32))
    """The visible start of the key (e.g. ``sf_test_ab12``), to tell keys apart in lists."""
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(200))
    """Comma-separated: ``read``, ``spend``, ``grant``."""
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), server_default=func.now())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class IdempotentRequest(NaturalKeyBase):
    """The first answer to a request made with an ``Idempotency-Key``, kept at least 7 days.

    Inserted in the same transaction as the change it answers, so a replay finds either nothing
    (the first attempt rolled back) or the committed answer; a concurrent duplicate waits on the
    primary key until the first commits.
    """

    __tablename__ = "idempotent_request"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    """``<server key id>:<operation>:<Idempotency-Key>``."""
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer, default=0)
    response: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[int] = mapped_column(BigInteger, index=True)
    """Unix seconds; rows older than the retention are purged."""
