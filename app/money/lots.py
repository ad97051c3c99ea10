"""Credit lots: units that arrived together, spent in a fixed order, expired as a unit.

Spending takes the soonest-expiring lot first, then promotional before paid, then the oldest
(:data:`SPEND_ORDER`). Every change of a lot's ``remaining`` is a ``lot_movement`` row of the
ledger entry that made it, so ``lot.remaining == lot.units - debt it paid + sum(movements)``
can be checked at any time (:func:`check_lots`).

Callers hold the buyer's balance row lock (``app.money.ledger.lock_balance`` or the spending
UPDATE) before touching lots: the lots read here cannot change under them. The CHECK
``remaining >= 0`` is the database's last word should that ever be broken.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import BigInteger, Table, bindparam, case, func, insert, select, update

from app.db.sql import SqlConnection
from app.money.ledger import ENTRIES
from app.money.models import CreditLot, LotKind, LotMovement

__all__ = (
    "LOTS",
    "MOVEMENTS",
    "LotRow",
    "Move",
    "apply_moves",
    "check_lots",
    "due_lots",
    "list_lots",
    "lot_expires_by",
    "lot_expiry",
    "lot_of_order",
    "movements_of",
    "next_expiry",
    "open_lot",
    "plan_give_back",
    "plan_take",
)

LOTS = cast(Table, CreditLot.__table__)
MOVEMENTS = cast(Table, LotMovement.__table__)

Move = tuple[int, int]
"""(lot id, signed units): negative takes from the lot, positive gives back to it."""

SPEND_ORDER = (
    LOTS.c.expires_at.is_(None),
    LOTS.c.expires_at,
    case((LOTS.c.kind == LotKind.PROMOTIONAL.value, 0), else_=1),
    LOTS.c.id,
)


@dataclass(frozen=True, slots=True)
class LotRow:
    id: int
    asset: str
    kind: str
    units: int
    remaining: int
    expires_at: int | None
    order_id: int | None
    reason: str


_LOT_COLUMNS = tuple(LOTS.c[name] for name in LotRow.__slots__)


@lru_cache(maxsize=1)
def _statements() -> dict[str, Any]:
    owner = (LOTS.c.user_id == bindparam("user_id")) & (LOTS.c.asset == bindparam("asset"))
    return {
        "open": insert(LOTS)
        .values(
            user_id=bindparam("user_id"),
            asset=bindparam("asset"),
            kind=bindparam("kind"),
            units=bindparam("units"),
            remaining=bindparam("remaining"),
            expires_at=bindparam("expires_at", type_=BigInteger),
            order_id=bindparam("order_id"),
            entry_id=bindparam("entry_id"),
            reason=bindparam("reason"),
        )
        .returning(LOTS.c.id),
        "spendable": select(LOTS.c.id, LOTS.c.remaining)
        .where(owner, LOTS.c.remaining > 0)
        .order_by(*SPEND_ORDER),
        "move": update(LOTS)
        .where(LOTS.c.id == bindparam("lot_id"))
        .values(remaining=LOTS.c.remaining + bindparam("delta")),
        "record": insert(MOVEMENTS).values(
            entry_id=bindparam("entry_id"), lot_id=bindparam("lot_id"), units=bindparam("delta")
        ),
        "of_entry": select(MOVEMENTS.c.lot_id, MOVEMENTS.c.units)
        .where(MOVEMENTS.c.entry_id == bindparam("entry_id"))
        .order_by(MOVEMENTS.c.id),
        "of_order": select(LOTS.c.id).where(LOTS.c.order_id == bindparam("order_id")),
        "expires_at": select(LOTS.c.expires_at).where(LOTS.c.id == bindparam("lot_id")),
        "due": select(LOTS.c.id, LOTS.c.remaining)
        .where(owner, LOTS.c.remaining > 0, LOTS.c.expires_at <= bindparam("now", type_=BigInteger))
        .order_by(LOTS.c.id),
        "soonest": select(LOTS.c.expires_at, func.sum(LOTS.c.remaining))
        .where(owner, LOTS.c.remaining > 0, LOTS.c.expires_at > bindparam("after", type_=BigInteger))
        .group_by(LOTS.c.expires_at)
        .order_by(LOTS.c.expires_at)
        .limit(1),
    }


def open_lot(
    conn: SqlConnection,
    *,
    user_id: int,
    asset: str,
    kind: LotKind,
    units: int,
    remaining: int,
    entry_id: int,
    expires_at: int | None = None,
    order_id: int | None = None,
    reason: str = "",
) -> int:
    """Make the lot of a credit; ``remaining`` is ``units`` less the debt the credit paid."""
    return int(
        conn.execute(
            _statements()["open"],
            {
                "user_id": user_id,
                "asset": asset,
                "kind": kind.value,
                "units": units,
                "remaining": remaining,
                "expires_at": expires_at,
                "order_id": order_id,
                "entry_id": entry_id,
                "reason": reason[:500],
            },
        ).scalar()
    )


def plan_take(
    conn: SqlConnection, *, user_id: int, asset: str, units: int, first_lot: int | None = None
) -> list[Move]:
    """Which lots give up to ``units`` in spending order (``first_lot`` before all); writes nothing.

    Returns fewer units than asked when the lots hold fewer: the caller makes the rest debt.
    """
    lots = conn.execute(_statements()["spendable"], {"user_id": user_id, "asset": asset}).all()
    if first_lot is not None:
        lots.sort(key=lambda lot: lot[0] != first_lot)  # stable: the rest keep spending order
    moves: list[Move] = []
    left = units
    for lot_id, remaining in lots:
        if left <= 0:
            break
        take = min(int(remaining), left)
        moves.append((int(lot_id), -take))
        left -= take
    return moves


def plan_give_back(taken: Iterable[Move], units: int, *, overflow_lot: int | None = None) -> list[Move]:
    """Give ``units`` back to the lots an entry took from, the last-taken first.

    What was taken first is what a partial capture spent, so the rest returns to the lots it
    would have stayed in. Units beyond what was taken go to ``overflow_lot``.
    """
    moves: list[Move] = []
    left = units
    for lot_id, delta in reversed(list(taken)):
        if left <= 0:
            break
        give = min(-delta, left)
        if give > 0:
            moves.append((lot_id, give))
            left -= give
    if left > 0:
        if overflow_lot is None:
            raise RuntimeError(f"{left} units to give back and no lot to take them")
        moves.append((overflow_lot, left))
    return moves


def apply_moves(conn: SqlConnection, entry_id: int, moves: Iterable[Move]) -> None:
    """Move the lots and record each movement under ``entry_id``."""
    statements = _statements()
    merged: dict[int, int] = {}
    for lot_id, delta in moves:
        merged[lot_id] = merged.get(lot_id, 0) + delta
    for lot_id, delta in merged.items():
        if delta == 0:
            continue
        conn.execute(statements["move"], {"lot_id": lot_id, "delta": delta})
        conn.execute(statements["record"], {"entry_id": entry_id, "lot_id": lot_id, "delta": delta})


def movements_of(conn: SqlConnection, entry_id: int) -> list[Move]:
    """The lot movements one entry recorded, in the order they were made."""
    return [(int(a), int(b)) for a, b in conn.execute(_statements()["of_entry"], {"entry_id": entry_id})]


def lot_expiry(conn: SqlConnection, lot_id: int) -> int | None:
    """When the lot expires (Unix seconds), or None if it never does."""
    at = conn.execute(_statements()["expires_at"], {"lot_id": lot_id}).scalar()
    return None if at is None else int(at)


def lot_expires_by(conn: SqlConnection, lot_id: int, now: int) -> bool:
    """Whether the lot has an expiry at or before ``now``."""
    at = lot_expiry(conn, lot_id)
    return at is not None and at <= now


def lot_of_order(conn: SqlConnection, order_id: int) -> int | None:
    value = conn.execute(_statements()["of_order"], {"order_id": order_id}).scalar()
    return None if value is None else int(value)


def due_lots(conn: SqlConnection, *, user_id: int, asset: str, now: int) -> list[Move]:
    """Non-empty lots whose expiry has come: (lot id, remaining)."""
    rows = conn.execute(_statements()["due"], {"user_id": user_id, "asset": asset, "now": now})
    return [(int(a), int(b)) for a, b in rows]


def next_expiry(conn: SqlConnection, *, user_id: int, asset: str, after: int) -> tuple[int | None, int]:
    """The soonest expiry after ``after`` of a non-empty lot and its units; (None, 0) if none."""
    row = conn.execute(_statements()["soonest"], {"user_id": user_id, "asset": asset, "after": after}).first()
    return (None, 0) if row is None else (int(row[0]), int(row[1]))


def list_lots(
    conn: SqlConnection,
    user_id: int,
    *,
    asset: str | None = None,
    after_id: int | None = None,
    limit: int = 50,
    only_remaining: bool = False,
) -> list[LotRow]:
    """A page of one buyer's lots, oldest first (keyset on the id)."""
    stmt = select(*_LOT_COLUMNS).where(LOTS.c.user_id == user_id)
    if asset is not None:
        stmt = stmt.where(LOTS.c.asset == asset)
    if after_id is not None:
        stmt = stmt.where(LOTS.c.id > after_id)
    if only_remaining:
        stmt = stmt.where(LOTS.c.remaining > 0)
    rows = conn.execute(stmt.order_by(LOTS.c.id).limit(max(1, min(limit, 500))))
    return [LotRow(*row) for row in rows]


def check_lots(conn: SqlConnection) -> list[str]:
    """Lots whose remaining differs from their units, the debt their credit paid and their movements."""
    moved = (
        select(MOVEMENTS.c.lot_id, func.sum(MOVEMENTS.c.units).label("moved"))
        .group_by(MOVEMENTS.c.lot_id)
        .subquery()
    )
    rows = conn.execute(
        select(
            LOTS.c.id,
            LOTS.c.units,
            LOTS.c.remaining,
            func.coalesce(moved.c.moved, 0),
            ENTRIES.c.debt_units,
        )
        .select_from(LOTS)
        .outerjoin(moved, moved.c.lot_id == LOTS.c.id)
        .join(ENTRIES, ENTRIES.c.id == LOTS.c.entry_id)
    )
    problems = []
    for lot_id, units, remaining, movements, debt_units in rows:
        # A credit's entry has debt_units = -(debt it paid); the lot started with units less that.
        expected = int(units) + int(debt_units) + int(movements)
        if expected != remaining:
            problems.append(f"lot {lot_id}: remaining {remaining}, expected {expected}")
    return problems
