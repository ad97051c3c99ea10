"""Append to the ledger and read balances.

Exactly-once comes from the database: the UNIQUE ``idempotency_key`` with
``INSERT ... ON CONFLICT DO NOTHING``, and a balance upsert that adds in SQL under the row
lock, so concurrent writers never lose an update. Every function takes a synchronous
connection (``app.db.sql.SqlConnection``); async callers use ``app.db.sql.run``.

:func:`post_entry` moves the balance first and then inserts the entry with the balance it
produced (two statements, the webhook's hottest path); when the key turns out to be taken it
moves the balance back in the same transaction, under the same row lock, so nothing changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import BigInteger, Table, bindparam, case, func, select, update

from app.db.sql import SqlConnection, dialect_insert
from app.money.models import Balance, LedgerEntry

__all__ = (
    "BalanceRow",
    "BalanceView",
    "EntryRow",
    "NotCovered",
    "balances",
    "check_invariant",
    "entries",
    "lock_balance",
    "post_entry",
)

ENTRIES = cast(Table, LedgerEntry.__table__)
BALANCES = cast(Table, Balance.__table__)


@dataclass(frozen=True, slots=True)
class EntryRow:
    """An entry as :func:`post_entry` wrote it (cheaper than an ORM object on the writer's hot path)."""

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
    reserved_units: int = 0
    debt_units: int = 0
    details: str | None = None


@dataclass(frozen=True, slots=True)
class BalanceView:
    """What a buyer has of one asset: spendable units and units held by open disputes."""

    available: int
    held: int


@lru_cache(maxsize=4)
def _statements(dialect: str) -> dict[str, Any]:
    """Built once per dialect: building a statement costs more than running it on SQLite."""
    b = BALANCES.c
    # The soonest expiry of the balance, lowered to a new lot's or hold's own (None: unchanged).
    expiry = bindparam("expiry", type_=BigInteger)
    next_expiry = case(
        (expiry.is_(None), b.next_expiry),
        ((b.next_expiry.is_(None)) | (b.next_expiry > expiry), expiry),
        else_=b.next_expiry,
    )
    moves = {
        "available": b.available + bindparam("units"),
        "held": b.held + bindparam("held_units"),
        "reserved": b.reserved + bindparam("reserved_units"),
        "debt": b.debt + bindparam("debt_units"),
        "next_expiry": next_expiry,
    }
    # RETURNING gives the values this transaction produced (under the row lock from here on).
    upsert = dialect_insert(dialect, BALANCES).values(
        user_id=bindparam("user_id"),
        asset=bindparam("asset"),
        available=bindparam("units"),
        held=bindparam("held_units"),
        reserved=bindparam("reserved_units"),
        debt=bindparam("debt_units"),
        next_expiry=expiry,
    )
    move_balance = upsert.on_conflict_do_update(index_elements=["user_id", "asset"], set_=moves).returning(
        b.available, b.held
    )
    # Spending: the check and the move are one statement, so no concurrency overdraws. Units of a
    # lot past its expiry are not spendable: a passed ``next_expiry`` refuses until it is swept.
    spend_balance = (
        update(BALANCES)
        .where(
            b.user_id == bindparam("owner"),
            b.asset == bindparam("of_asset"),
            b.available >= bindparam("cover", type_=BigInteger),
            (b.next_expiry.is_(None)) | (b.next_expiry > bindparam("now", type_=BigInteger)),
        )
        .values(**moves)
        .returning(b.available, b.held)
    )
    insert_entry = (
        dialect_insert(dialect, ENTRIES)
        .values(
            user_id=bindparam("user_id"),
            asset=bindparam("asset"),
            kind=bindparam("kind"),
            units=bindparam("units"),
            held_units=bindparam("held_units"),
            reserved_units=bindparam("reserved_units"),
            debt_units=bindparam("debt_units"),
            details=bindparam("details"),
            balance_after=bindparam("after"),
            held_after=bindparam("held_after"),
            order_id=bindparam("order_id"),
            amount=bindparam("amount"),
            idempotency_key=bindparam("idempotency_key"),
            reason=bindparam("reason"),
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(ENTRIES.c.id, ENTRIES.c.created_at)
    )
    move_back = (
        update(BALANCES)
        .where(b.user_id == bindparam("owner"), b.asset == bindparam("of_asset"))
        .values(
            available=b.available - bindparam("back_units"),
            held=b.held - bindparam("back_held"),
            reserved=b.reserved - bindparam("back_reserved"),
            debt=b.debt - bindparam("back_debt"),
        )
    )
    lock = (
        select(b.available, b.held, b.reserved, b.debt, b.next_expiry)
        .where(b.user_id == bindparam("user_id"), b.asset == bindparam("asset"))
        .with_for_update()
    )
    return {
        "move_balance": move_balance,
        "spend_balance": spend_balance,
        "insert_entry": insert_entry,
        "move_back": move_back,
        "lock": lock,
    }


class NotCovered(Exception):
    """A spending entry found too little available (or an expiry not yet swept): nothing changed."""


@dataclass(frozen=True, slots=True)
class BalanceRow:
    """A balance row as this transaction sees it, locked (PostgreSQL ``FOR UPDATE``)."""

    available: int
    held: int
    reserved: int
    debt: int
    next_expiry: int | None


def lock_balance(conn: SqlConnection, user_id: int, asset: str) -> BalanceRow | None:
    """Read one balance under its row lock: every change to a buyer's lots happens under it.

    Taking this lock first (or the spending UPDATE's, which takes the same) is the one lock order
    of the money code: balance, then holds, then lots. SQLite's single writer serialises anyway.
    """
    row = conn.execute(_statements(conn.dialect.name)["lock"], {"user_id": user_id, "asset": asset}).first()
    return None if row is None else BalanceRow(*row)


def post_entry(
    conn: SqlConnection,
    *,
    user_id: int,
    asset: str,
    units: int,
    held_units: int = 0,
    reserved_units: int = 0,
    debt_units: int = 0,
    kind: str,
    idempotency_key: str,
    order_id: int | None = None,
    amount: int | None = None,
    reason: str = "",
    details: str | None = None,
    expiry: int | None = None,
    spend_at: int | None = None,
) -> EntryRow | None:
    """Append one entry and move the balance with it; ``None`` (nothing changed) if the key was used.

    ``expiry`` lowers the balance's ``next_expiry`` to it (a new expiring lot or hold). With
    ``spend_at`` (Unix seconds) the entry spends: the balance moves only if it covers ``-units``
    and nothing expired by then is unswept, else :class:`NotCovered` and nothing changed.
    """
    statements = _statements(conn.dialect.name)
    params: dict[str, Any] = {
        "user_id": user_id,
        "asset": asset,
        "kind": kind,
        "units": units,
        "held_units": held_units,
        "reserved_units": reserved_units,
        "debt_units": debt_units,
        "details": details,
        "order_id": order_id,
        "amount": amount,
        "idempotency_key": idempotency_key,
        "reason": reason[:500],
        "expiry": expiry,
    }
    if spend_at is None:
        available, held = conn.execute(statements["move_balance"], params).one()
    else:
        # Its own parameters: an UPDATE would SET any column named by an extra one (user_id...).
        moved = conn.execute(
            statements["spend_balance"],
            {
                "owner": user_id,
                "of_asset": asset,
                "cover": -units,
                "now": spend_at,
                "units": units,
                "held_units": held_units,
                "reserved_units": reserved_units,
                "debt_units": debt_units,
                "expiry": expiry,
            },
        ).first()
        if moved is None:
            raise NotCovered(asset)
        available, held = moved
    inserted = conn.execute(
        statements["insert_entry"], {**params, "after": available, "held_after": held}
    ).first()
    if inserted is None:  # the key was used before: undo the move, nothing changed
        conn.execute(
            statements["move_back"],
            {
                "owner": user_id,
                "of_asset": asset,
                "back_units": units,
                "back_held": held_units,
                "back_reserved": reserved_units,
                "back_debt": debt_units,
            },
        )
        return None
    entry_id, created_at = inserted
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
        reserved_units=reserved_units,
        debt_units=debt_units,
        details=details,
    )


def balances(conn: SqlConnection, user_id: int) -> dict[str, BalanceView]:
    """Balances of one buyer by asset."""
    rows = conn.execute(
        select(BALANCES.c.asset, BALANCES.c.available, BALANCES.c.held)
        .where(BALANCES.c.user_id == user_id)
        .order_by(BALANCES.c.asset)
    )
    return {asset: BalanceView(available=available, held=held) for asset, available, held in rows}


_ENTRY_COLUMNS = tuple(ENTRIES.c[name] for name in EntryRow.__slots__)


def entries(
    conn: SqlConnection, user_id: int, *, limit: int = 20, before_id: int | None = None
) -> list[EntryRow]:
    """A page of one buyer's entries, newest first.

    Pass the last id seen as ``before_id`` for the next page (keyset: stable while entries arrive).
    """
    stmt = select(*_ENTRY_COLUMNS).where(ENTRIES.c.user_id == user_id)
    if before_id is not None:
        stmt = stmt.where(ENTRIES.c.id < before_id)
    rows = conn.execute(stmt.order_by(ENTRIES.c.id.desc()).limit(max(1, min(limit, 500))))
    return [EntryRow(*row) for row in rows]


def check_invariant(conn: SqlConnection) -> list[str]:
    """Every (user, asset) whose balance row differs from the sum of its entries; empty is good."""
    sums = (
        select(
            ENTRIES.c.user_id,
            ENTRIES.c.asset,
            func.sum(ENTRIES.c.units).label("units"),
            func.sum(ENTRIES.c.held_units).label("held"),
        )
        .group_by(ENTRIES.c.user_id, ENTRIES.c.asset)
        .subquery()
    )
    on = (BALANCES.c.user_id == sums.c.user_id) & (BALANCES.c.asset == sums.c.asset)
    problems: list[str] = []
    # Entries without a balance row, or sums that differ from it.
    rows = conn.execute(
        select(sums.c.user_id, sums.c.asset, sums.c.units, sums.c.held, BALANCES.c.available, BALANCES.c.held)
        .select_from(sums)
        .outerjoin(BALANCES, on)
    )
    for user_id, asset, units, held, available, held_balance in rows:
        if available is None or int(units) != available or int(held) != held_balance:
            problems.append(
                f"user {user_id} {asset}: balance available={available} held={held_balance}, "
                f"entries sum units={units} held={held}"
            )
    # Balance rows that no entry explains.
    orphans = conn.execute(
        select(BALANCES.c.user_id, BALANCES.c.asset, BALANCES.c.available, BALANCES.c.held)
        .select_from(BALANCES)
        .outerjoin(sums, on)
        .where(sums.c.user_id.is_(None))
        .where((BALANCES.c.available != 0) | (BALANCES.c.held != 0))
    )
    problems.extend(
        f"user {user_id} {asset}: balance available={available} held={held} without entries"
        for user_id, asset, available, held in orphans
    )
    return problems
