"""Append to the ledger and read balances.

Every function has ONE implementation written against synchronous SQLAlchemy (the
``*_sync`` functions; the money path on a Core ``Connection`` with statements built once).
The async API runs it through ``AsyncConnection.run_sync`` / ``AsyncSession.run_sync`` on
the caller's transaction; the SQLite webhook writer (``app.webhooks.ingest``) calls it
directly on its own thread. So the money logic exists once, whichever way it is driven.

Exactly-once comes from the database: the UNIQUE ``idempotency_key`` with
``INSERT ... ON CONFLICT DO NOTHING`` and a balance upsert that adds in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Protocol, cast

from sqlalchemy import Connection, Table, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.ledger.models import Balance, LedgerEntry

__all__ = (
    "BalanceView",
    "EntryRow",
    "SqlConnection",
    "balances",
    "balances_sync",
    "check_invariant",
    "check_invariant_sync",
    "entries",
    "entries_sync",
    "post_entry",
    "post_entry_sync",
)


class SqlConnection(Protocol):
    """What the money code needs of a connection: SQLAlchemy's ``Connection`` (any database)
    or ``app.webhooks.fastsql.FastSqlite`` (the SQLite writer). Rows are read by position."""

    @property
    def dialect(self) -> Any: ...

    def execute(self, statement: Any, parameters: Any = ..., /) -> Any: ...


ENTRIES = cast(Table, LedgerEntry.__table__)
BALANCES = cast(Table, Balance.__table__)


@dataclass(frozen=True, slots=True)
class EntryRow:
    """An entry as the sync core wrote it (cheaper than an ORM object on the writer's hot path)."""

    id: int
    user_id: int
    asset: str
    kind: str
    units: int
    held_units: int
    balance_after: int
    held_after: int
    order_id: int | None
    amount: int | None
    idempotency_key: str
    reason: str
    created_at: datetime

    def to_model(self) -> LedgerEntry:
        """A detached ``LedgerEntry`` with the same values (what the async API returns)."""
        return LedgerEntry(**{name: getattr(self, name) for name in self.__slots__})


@dataclass(frozen=True, slots=True)
class BalanceView:
    """What a buyer has of one asset: spendable units and units held by open disputes."""

    available: int
    held: int


def dialect_insert(dialect: str, table: Any) -> Any:
    """The dialect's INSERT, which knows ``ON CONFLICT``; both databases we run on have it."""
    if dialect == "postgresql":
        return pg_insert(table)
    if dialect == "sqlite":
        return sqlite_insert(table)
    raise RuntimeError(f"unsupported database dialect {dialect!r}")


@lru_cache(maxsize=4)
def _statements(dialect: str) -> tuple[Any, Any, Any]:
    """Built once per dialect: building a statement costs more than running it on SQLite."""
    insert_entry = (
        dialect_insert(dialect, ENTRIES)
        .values(
            user_id=bindparam("user_id"),
            asset=bindparam("asset"),
            kind=bindparam("kind"),
            units=bindparam("units"),
            held_units=bindparam("held_units"),
            balance_after=0,
            held_after=0,
            order_id=bindparam("order_id"),
            amount=bindparam("amount"),
            idempotency_key=bindparam("idempotency_key"),
            reason=bindparam("reason"),
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(ENTRIES.c.id, ENTRIES.c.created_at)
    )
    # The upsert adds in SQL under the row lock, so concurrent writers never lose an update;
    # RETURNING gives the values this transaction produced, which the entry records.
    upsert = dialect_insert(dialect, BALANCES).values(
        user_id=bindparam("user_id"),
        asset=bindparam("asset"),
        available=bindparam("units"),
        held=bindparam("held_units"),
    )
    upsert_balance = upsert.on_conflict_do_update(
        index_elements=["user_id", "asset"],
        set_={
            "available": BALANCES.c.available + upsert.excluded.available,
            "held": BALANCES.c.held + upsert.excluded.held,
        },
    ).returning(BALANCES.c.available, BALANCES.c.held)
    record_after = (
        update(ENTRIES)
        .where(ENTRIES.c.id == bindparam("entry_id"))
        .values(balance_after=bindparam("after"), held_after=bindparam("held"))
    )
    return insert_entry, upsert_balance, record_after


def post_entry_sync(
    conn: SqlConnection,
    *,
    user_id: int,
    asset: str,
    units: int,
    held_units: int = 0,
    kind: str,
    idempotency_key: str,
    order_id: int | None = None,
    amount: int | None = None,
    reason: str = "",
) -> EntryRow | None:
    """Append one entry and move the balance with it; ``None`` if the key was already used.

    Runs on the caller's connection and transaction.
    """
    insert_entry, upsert_balance, record_after = _statements(conn.dialect.name)
    params = {
        "user_id": user_id,
        "asset": asset,
        "kind": kind,
        "units": units,
        "held_units": held_units,
        "order_id": order_id,
        "amount": amount,
        "idempotency_key": idempotency_key,
        "reason": reason[:500],
    }
    inserted = conn.execute(insert_entry, params).first()
    if inserted is None:
        return None
    after = conn.execute(upsert_balance, params).one()
    entry_id, created_at = inserted[0], inserted[1]
    available, held = after[0], after[1]
    conn.execute(record_after, {"entry_id": entry_id, "after": available, "held": held})
    return EntryRow(
        id=entry_id,
        user_id=user_id,
        asset=asset,
        kind=kind,
        units=units,
        held_units=held_units,
        balance_after=available,
        held_after=held,
        order_id=order_id,
        amount=amount,
        idempotency_key=idempotency_key,
        reason=reason[:500],
        created_at=created_at,
    )


def balances_sync(session: Session, user_id: int) -> dict[str, BalanceView]:
    rows = session.execute(
        select(Balance.asset, Balance.available, Balance.held)
        .where(Balance.user_id == user_id)
        .order_by(Balance.asset)
    )
    return {row.asset: BalanceView(available=row.available, held=row.held) for row in rows}


def entries_sync(
    session: Session, user_id: int, *, limit: int = 20, before_id: int | None = None
) -> list[LedgerEntry]:
    stmt = select(LedgerEntry).where(LedgerEntry.user_id == user_id)
    if before_id is not None:
        stmt = stmt.where(LedgerEntry.id < before_id)
    return list(session.scalars(stmt.order_by(LedgerEntry.id.desc()).limit(max(1, min(limit, 500)))))


def check_invariant_sync(session: Session) -> list[str]:
    """Every (user, asset) whose balance row differs from the sum of its entries."""
    sums = (
        select(
            LedgerEntry.user_id,
            LedgerEntry.asset,
            func.sum(LedgerEntry.units).label("units"),
            func.sum(LedgerEntry.held_units).label("held"),
        )
        .group_by(LedgerEntry.user_id, LedgerEntry.asset)
        .subquery()
    )
    problems: list[str] = []
    # Entries without a balance row, or sums that differ from it.
    rows = session.execute(
        select(sums.c.user_id, sums.c.asset, sums.c.units, sums.c.held, Balance.available, Balance.held)
        .select_from(sums)
        .outerjoin(Balance, (Balance.user_id == sums.c.user_id) & (Balance.asset == sums.c.asset))
    )
    for user_id, asset, units, held, available, held_balance in rows:
        if available is None or int(units) != available or int(held) != held_balance:
            problems.append(
                f"user {user_id} {asset}: balance available={available} held={held_balance}, "
                f"entries sum units={units} held={held}"
            )
    # Balance rows that no entry explains.
    orphans = session.execute(
        select(Balance.user_id, Balance.asset, Balance.available, Balance.held)
        .select_from(Balance)
        .outerjoin(sums, (Balance.user_id == sums.c.user_id) & (Balance.asset == sums.c.asset))
        .where(sums.c.user_id.is_(None))
        .where((Balance.available != 0) | (Balance.held != 0))
    )
    problems.extend(
        f"user {row.user_id} {row.asset}: balance available={row.available} held={row.held} without entries"
        for row in orphans
    )
    return problems


async def post_entry(
    db: AsyncSession,
    *,
    user_id: int,
    asset: str,
    units: int,
    held_units: int = 0,
    kind: str,
    idempotency_key: str,
    order_id: int | None = None,
    amount: int | None = None,
    reason: str = "",
) -> LedgerEntry | None:
    """Append one entry and update the balance in the caller's transaction (flushes, never commits).

    Returns ``None`` and changes nothing when ``idempotency_key`` was used before.
    """

    def run(conn: Connection) -> EntryRow | None:
        return post_entry_sync(
            conn,
            user_id=user_id,
            asset=asset,
            units=units,
            held_units=held_units,
            kind=kind,
            idempotency_key=idempotency_key,
            order_id=order_id,
            amount=amount,
            reason=reason,
        )

    conn = await db.connection()
    row = await conn.run_sync(run)
    return None if row is None else row.to_model()


async def balances(db: AsyncSession, user_id: int) -> dict[str, BalanceView]:
    """Balances of one buyer by asset."""
    return await db.run_sync(balances_sync, user_id)


async def entries(
    db: AsyncSession, user_id: int, *, limit: int = 20, before_id: int | None = None
) -> list[LedgerEntry]:
    """A page of one buyer's entries, newest first; pass the last id seen as ``before_id``."""
    return await db.run_sync(lambda s: entries_sync(s, user_id, limit=limit, before_id=before_id))


async def check_invariant(db: AsyncSession) -> list[str]:
    """Descriptions of every (user, asset) whose balance is not the sum of its entries; empty is good."""
    return await db.run_sync(check_invariant_sync)
