"""The mail outbox: one row per message, written in the transaction of the event it tells about."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import BigIntBase

__all__ = ("MailMessage",)


class MailMessage(BigIntBase):
    """A message to a buyer: what to say (``kind`` and ``data``), rendered and sent by the worker.

    Rendering happens at send time, in the account's language then, so the money path only
    inserts one small row (no templates in the webhook writer).
    """

    __tablename__ = "mail_outbox"
    __table_args__ = (Index("ix_mail_outbox_status_next", "status", "next_attempt_at"),)

    kind: Mapped[str] = mapped_column(String(32))
    """``receipt``, ``refund``, ``password_reset`` or ``verify_email`` (app/mail/messages.py)."""
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True, default=None)
    """One message per event however often the event is seen (``receipt:<order>``...)."""
    data: Mapped[str] = mapped_column(Text)
    """JSON; a message holding a secret (a reset link) has it emptied once sent."""
    secret: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """``pending``, ``sent`` or ``failed`` (gave up after :data:`app.mail.worker.MAX_ATTEMPTS`)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[int] = mapped_column(BigInteger)
    """Unix seconds; a worker that claims the row pushes it past its SMTP call (a lease)."""
    claim: Mapped[str | None] = mapped_column(String(32), default=None)
    """The token of the worker sending it now; only that one may record the outcome."""
    created: Mapped[int] = mapped_column(BigInteger)
    sent_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
