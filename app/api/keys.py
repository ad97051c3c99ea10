"""Server keys: made once and shown once, stored as SHA-256, looked up by that hash.

A key is ``sf_live_`` (the shop's Stripe key is live) or ``sf_test_`` followed by 32 random
bytes in URL-safe base64 from :mod:`secrets`; a fast hash suffices for such a secret (nothing
to brute-force), so each request costs one indexed look-up.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Table, and_, insert, or_, select, update

from app.api.models import ServerKey
from app.db.sql import SqlConnection

__all__ = (
    "SCOPES",
    "AmbiguousPrefix",
    "BadScopes",
    "KeyRow",
    "NewKey",
    "create_key",
    "find_key",
    "hash_key",
    "key_prefix",
    "list_keys",
    "needs_touch",
    "parse_scopes",
    "revoke_key",
    "touch_key",
)

SCOPES: Final = ("read", "spend", "grant")
"""``read``: customers and balances; ``spend``: debits and holds; ``grant``: promotional credit.
Writing customers and making sign-in links need ``spend`` or ``grant``."""
PREFIX_LENGTH: Final = 16
"""``sf_test_`` + 8 of the 43 secret characters: enough to tell keys apart, too few to guess with."""
TOUCH_EVERY: Final = timedelta(seconds=60)
"""``last_used_at`` is written at most once a minute per key."""
KEY_MAX: Final = 200
_TABLE: Final[Table] = ServerKey.__table__  # type: ignore[assignment]


class AmbiguousPrefix(LookupError):
    """Several live keys start this way: revoke by id instead."""


class BadScopes(ValueError):
    """A scope list naming something other than :data:`SCOPES`, or nothing."""


def parse_scopes(raw: str) -> tuple[str, ...]:
    """``read,spend`` → ``("read", "spend")`` in canonical order; unknown names raise ``BadScopes``."""
    named = {part.strip() for part in raw.split(",") if part.strip()}
    unknown = named - set(SCOPES)
    if unknown or not named:
        raise BadScopes(f"scopes must be a comma-separated subset of {','.join(SCOPES)}")
    return tuple(scope for scope in SCOPES if scope in named)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str:
    return key[:PREFIX_LENGTH]


@dataclass(frozen=True, slots=True)
class NewKey:
    id: int
    key: str
    """The whole key: shown once, never stored."""
    prefix: str
    scopes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class KeyRow:
    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


def _row(row: Any) -> KeyRow:
    return KeyRow(
        id=int(row.id),
        name=row.name,
        prefix=row.prefix,
        scopes=tuple(s.strip() for s in str(row.scopes).split(",") if s.strip()),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def create_key(conn: SqlConnection, *, name: str, scopes: tuple[str, ...], live: bool) -> NewKey:
    """Insert a new key and return it whole (the only time it exists outside the caller's hands)."""
    key = ("sf_live_" if live else "sf_test_") + secrets.token_urlsafe(32)
    prefix = key_prefix(key)
    statement = (
        insert(_TABLE)
        .values(name=name, prefix=prefix, key_hash=hash_key(key), scopes=",".join(scopes))
        .returning(_TABLE.c.id)
    )
    key_id = int(conn.execute(statement).scalar_one())
    return NewKey(id=key_id, key=key, prefix=prefix, scopes=scopes)


def list_keys(conn: SqlConnection) -> list[KeyRow]:
    return [_row(row) for row in conn.execute(select(_TABLE).order_by(_TABLE.c.id))]


def revoke_key(conn: SqlConnection, prefix_or_id: str, *, now: datetime | None = None) -> list[KeyRow]:
    """Revoke the keys with this id or prefix that are not revoked yet; returns those revoked."""
    now = now or datetime.now(UTC)
    if prefix_or_id.isdigit():
        which = _TABLE.c.id == int(prefix_or_id)
    else:
        which = _TABLE.c.prefix == prefix_or_id
        live = conn.execute(select(_TABLE.c.id).where(which, _TABLE.c.revoked_at.is_(None))).all()
        if len(live) > 1:
            raise AmbiguousPrefix(f"{len(live)} live keys start with {prefix_or_id!r}: revoke by id")
    statement = (
        update(_TABLE).where(which, _TABLE.c.revoked_at.is_(None)).values(revoked_at=now).returning(*_TABLE.c)
    )
    return [_row(row) for row in conn.execute(statement)]


def find_key(conn: SqlConnection, key: str) -> KeyRow | None:
    """The live (not revoked) key ``key`` is, else ``None``."""
    if not key or len(key) > KEY_MAX:
        return None
    statement = select(_TABLE).where(_TABLE.c.key_hash == hash_key(key), _TABLE.c.revoked_at.is_(None))
    row = conn.execute(statement).first()
    return _row(row) if row is not None else None


def touch_key(conn: SqlConnection, key_id: int, *, now: datetime | None = None) -> bool:
    """Set ``last_used_at`` unless it was set within :data:`TOUCH_EVERY` (by any replica)."""
    now = now or datetime.now(UTC)
    column = _TABLE.c.last_used_at
    statement = (
        update(_TABLE)
        .where(_TABLE.c.id == key_id, or_(column.is_(None), and_(column < now - TOUCH_EVERY)))
        .values(last_used_at=now)
    )
    return bool(conn.execute(statement).rowcount)


def needs_touch(row: KeyRow, now: datetime | None = None) -> bool:
    """Whether the look-up just made saw a ``last_used_at`` older than a minute (no write otherwise)."""
    now = now or datetime.now(UTC)
    return row.last_used_at is None or row.last_used_at < now - TOUCH_EVERY
