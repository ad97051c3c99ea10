"""Buyers with a balance, and their keys, for the buyer-key tests."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.accounts.models import User
from app.api.models import ServerKey
from app.buyer_keys.models import KeyUsage
from app.buyer_keys.service import CreatedKey, KeyView, create_key, list_keys
from app.db.sql import run
from app.host_webhooks.models import HostEvent
from app.money.credits import credit, customer_balances
from app.money.models import LedgerEntry, LotKind

Sessions = async_sessionmaker[AsyncSession]

ASSET = "quota"
NOON = int(datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp())
"""A fixed 'now' for tests that cross UTC midnights and month starts."""


def at(*parts: int) -> int:
    """Unix seconds of a UTC moment: ``at(2026, 12, 2)`` is that midnight."""
    return int(datetime(*parts, tzinfo=UTC).timestamp())  # type: ignore[misc]


async def make_buyer(sessions: Sessions, units: int = 100, *, asset: str = ASSET) -> User:
    """A committed buyer with ``units`` of ``asset`` (a promotional credit) and a host id."""
    async with sessions() as db, db.begin():
        user = User(
            email=f"keys-{secrets.token_hex(4)}@example.test",
            password_hash="x",
            external_id="ext-" + secrets.token_hex(4),
        )
        db.add(user)
        await db.flush()
        if units:
            await run(
                db,
                credit,
                user_id=user.id,
                kind="grant",
                lot_kind=LotKind.PROMOTIONAL,
                asset=asset,
                units=units,
                key=f"test-grant:{user.id}:{secrets.token_hex(4)}",
                reason="test balance",
            )
    return user


async def spendable(sessions: Sessions, user_id: int, asset: str = ASSET) -> int:
    async with sessions() as db:
        balance = (await run(db, customer_balances, user_id)).get(asset)
    return balance.available if balance is not None else 0


async def usage_rows(sessions: Sessions) -> dict[str, int]:
    async with sessions() as db:
        rows = await db.execute(select(KeyUsage.period, KeyUsage.units))
        return {str(period): int(units) for period, units in rows}


async def spend_entries(sessions: Sessions, user_id: int) -> int:
    async with sessions() as db:
        return int(
            await db.scalar(
                select(func.count())
                .select_from(LedgerEntry)
                .where(LedgerEntry.user_id == user_id, LedgerEntry.units < 0)
            )
            or 0
        )


async def make_server_key(sessions: Sessions, scopes: str = "spend", *, revoked: bool = False) -> str:
    """A host's server key (``sf_test_...``) stored as its SHA-256, as app/api stores them."""
    token = "sf_test_" + secrets.token_urlsafe(24)
    async with sessions() as db, db.begin():
        db.add(
            ServerKey(
                name="gateway",
                prefix=token[:12],
                key_hash=hashlib.sha256(token.encode()).hexdigest(),
                scopes=scopes,
                revoked_at=datetime.now(UTC) if revoked else None,
            )
        )
    return token


async def make_key(sessions: Sessions, user_id: int, **options: Any) -> CreatedKey:
    async with sessions() as db, db.begin():
        made: CreatedKey = await run(db, create_key, user_id=user_id, asset=ASSET, name="app", **options)
    return made


async def key_views(sessions: Sessions, user_id: int) -> list[KeyView]:
    async with sessions() as db:
        views: list[KeyView] = await run(db, list_keys, user_id)
    return views


async def host_events(sessions: Sessions, user_id: int) -> list[str]:
    """Types of the host events written for one buyer, oldest first."""
    async with sessions() as db:
        rows = await db.scalars(
            select(HostEvent.type)
            .where(HostEvent.user_id == user_id)
            .order_by(HostEvent.created, HostEvent.id)
        )
        return list(rows)
