"""Emailed single-use links (password reset, email verification): random tokens, stored hashed.

A token is 256 bits from :mod:`secrets`; only its SHA-256 is kept in ``account_token``, so a
copy of the database opens no account. It is spent by one conditional
``UPDATE ... WHERE used_at IS NULL AND expires_at > now RETURNING``: of two concurrent uses
one wins. (The outbox row that carries the link to the buyer holds the token until the
message is sent, then its data is emptied: app/mail/worker.py.)
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from typing import Final, Literal, cast

from sqlalchemy import Table, delete, insert, select, update

from app.accounts.models import AccountToken
from app.db.sql import SqlConnection

__all__ = ("Purpose", "TokenState", "issue", "peek", "revoke_all", "spend")

Purpose = Literal["reset", "verify"]
TokenState = Literal["valid", "spent", "unknown"]
SHAPE: Final = re.compile(r"[A-Za-z0-9_-]{43}")
"""``secrets.token_urlsafe(32)``: anything else is not one of ours and is never looked up."""
PURGE_AFTER: Final = 7 * 24 * 3600
TOKENS = cast(Table, AccountToken.__table__)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(conn: SqlConnection, *, user_id: int, purpose: Purpose, ttl: int, now: int | None = None) -> str:
    """Store a new token's hash; the token itself goes into the email once."""
    now = now if now is not None else int(time.time())
    token = secrets.token_urlsafe(32)
    conn.execute(
        insert(TOKENS).values(token_hash=_hash(token), purpose=purpose, user_id=user_id, expires_at=now + ttl)
    )
    conn.execute(delete(TOKENS).where(TOKENS.c.expires_at < now - PURGE_AFTER))
    return token


def spend(conn: SqlConnection, token: str, purpose: Purpose, *, now: int | None = None) -> int | None:
    """Use the token once; its account's id, or None when it is unknown, used or expired."""
    if not SHAPE.fullmatch(token):
        return None
    now = now if now is not None else int(time.time())
    row = conn.execute(
        update(TOKENS)
        .where(
            TOKENS.c.token_hash == _hash(token),
            TOKENS.c.purpose == purpose,
            TOKENS.c.used_at.is_(None),
            TOKENS.c.expires_at > now,
        )
        .values(used_at=now)
        .returning(TOKENS.c.user_id)
    ).first()
    return int(row[0]) if row is not None else None


def peek(
    conn: SqlConnection, token: str, purpose: Purpose, *, now: int | None = None
) -> tuple[TokenState, int | None]:
    """What the link's page should say (and whose it is), read without spending it."""
    if not SHAPE.fullmatch(token):
        return "unknown", None
    now = now if now is not None else int(time.time())
    row = conn.execute(
        select(TOKENS.c.used_at, TOKENS.c.expires_at, TOKENS.c.user_id).where(
            TOKENS.c.token_hash == _hash(token), TOKENS.c.purpose == purpose
        )
    ).first()
    if row is None:
        return "unknown", None
    return ("valid" if row[0] is None and row[1] > now else "spent"), int(row[2])


def revoke_all(conn: SqlConnection, *, user_id: int, purpose: Purpose, now: int | None = None) -> None:
    """Spend every outstanding token of this purpose (a reset makes the other reset links worthless)."""
    now = now if now is not None else int(time.time())
    conn.execute(
        update(TOKENS)
        .where(TOKENS.c.user_id == user_id, TOKENS.c.purpose == purpose, TOKENS.c.used_at.is_(None))
        .values(used_at=now)
    )
