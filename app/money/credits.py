"""Credits and spending: the lots behind every balance, debits, holds, expiry, debt and take-backs.

Read top to bottom, each operation is a few statements in the caller's transaction:

* :func:`credit` — a purchase or a grant: pays any debt first, the rest becomes a new lot.
* :func:`debit` — spends in ONE conditional UPDATE of the balance (``available >= units`` and no
  unswept expiry), then takes the units from the lots in spending order. Never overdraws,
  whatever the concurrency: the check and the move are the same statement.
* :func:`place_hold` / :func:`capture_hold` / :func:`release_hold` — a hold spends like a debit
  but into ``reserved``; a capture spends part or all of it and gives the rest back to the lots
  it came from; an open hold past its expiry is released by the next write that meets it.
* :func:`expire_due` — expired holds released, expired lots emptied by an ``expiry`` entry.
* :func:`take_back` / :func:`give_back` — refunds and disputes: from the order's own lot first,
  then the others; what was already spent becomes debt, which the next credit pays.

Invariants (``app.money.models``) are checked by :func:`check_credits`.
Lock order everywhere: the balance row, then holds, then lots.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import BigInteger, String, Table, bindparam, func, insert, select, union_all, update

from app.accounts.models import User
from app.db.sql import SqlConnection
from app.host_webhooks.outbox import emit
from app.money.ledger import BALANCES, ENTRIES, EntryRow, NotCovered, lock_balance, post_entry
from app.money.lots import (
    LOTS,
    LotRow,
    Move,
    apply_moves,
    check_lots,
    due_lots,
    list_lots,
    lot_expires_by,
    lot_expiry,
    lot_of_order,
    movements_of,
    next_expiry,
    open_lot,
    plan_give_back,
    plan_take,
)
from app.money.models import CreditHold, HoldStatus, LotKind, Order, OrderStatus

__all__ = (
    "AssetBalance",
    "CaptureTooLarge",
    "Debited",
    "HoldClosed",
    "HoldNotFound",
    "HoldRow",
    "Insufficient",
    "LotRow",
    "anything_due",
    "capture_hold",
    "check_credits",
    "credit",
    "customer_balances",
    "debit",
    "expire_due",
    "give_back",
    "list_holds",
    "list_lots",
    "load_hold",
    "place_hold",
    "release_hold",
    "sweep",
    "take_back",
)

HOLDS = cast(Table, CreditHold.__table__)
ORDERS = cast(Table, Order.__table__)
USERS = cast(Table, User.__table__)


class Insufficient(Exception):
    """Not enough spendable units; nothing was changed."""

    def __init__(self, spendable: int) -> None:
        super().__init__(f"spendable {spendable}")
        self.spendable = spendable


class HoldNotFound(LookupError):
    pass


class HoldClosed(Exception):
    """The hold is no longer open: ``status`` says how it ended."""

    def __init__(self, status: str, hold: HoldRow) -> None:
        super().__init__(status)
        self.status = status
        self.hold = hold


class CaptureTooLarge(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Debited:
    entry_id: int
    units: int
    available: int
    """Spendable after the debit."""
    lots: tuple[Move, ...]


@dataclass(frozen=True, slots=True)
class HoldRow:
    id: str
    user_id: int
    asset: str
    units: int
    captured: int
    status: str
    expires_at: int
    reason: str
    entry_id: int


@dataclass(frozen=True, slots=True)
class AssetBalance:
    """One asset of a buyer as hosts and the account page see it."""

    asset: str
    available: int
    """Spendable now (never negative)."""
    reserved: int
    held: int
    pending: int
    """Units of paid orders still waiting for the bank."""
    debt: int
    next_expiry_units: int
    next_expiry_at: int | None


_HOLD_COLUMNS = tuple(HOLDS.c[name] for name in HoldRow.__slots__)


def _now(now: int | None) -> int:
    return int(time.time()) if now is None else now


@lru_cache(maxsize=1)
def _statements() -> dict[str, Any]:
    h = HOLDS.c
    owner = (h.user_id == bindparam("user_id")) & (h.asset == bindparam("asset"))
    # Inside an UPDATE of balance, so its parameters cannot be named like its columns.
    of_owner = (h.user_id == bindparam("owner")) & (h.asset == bindparam("of_asset"))
    soonest_lot = select(LOTS.c.expires_at.label("at")).where(
        LOTS.c.user_id == bindparam("owner"),
        LOTS.c.asset == bindparam("of_asset"),
        LOTS.c.remaining > 0,
        LOTS.c.expires_at.is_not(None),
    )
    soonest_hold = select(h.expires_at.label("at")).where(of_owner, h.status == HoldStatus.OPEN.value)
    both = union_all(soonest_lot, soonest_hold).subquery()
    return {
        "insert_hold": insert(HOLDS).values(
            id=bindparam("id"),
            user_id=bindparam("user_id"),
            asset=bindparam("asset"),
            units=bindparam("units"),
            captured=0,
            status=HoldStatus.OPEN.value,
            expires_at=bindparam("expires_at", type_=BigInteger),
            entry_id=bindparam("entry_id"),
            reason=bindparam("reason"),
        ),
        "hold": select(*_HOLD_COLUMNS).where(h.id == bindparam("id")),
        "hold_locked": select(*_HOLD_COLUMNS).where(h.id == bindparam("id")).with_for_update(),
        # Closing is conditional: of two racing closes, one finds the hold no longer open.
        "close_hold": update(HOLDS)
        .where(h.id == bindparam("hold_id"), h.status == HoldStatus.OPEN.value)
        .values(
            status=bindparam("status", type_=String),
            captured=bindparam("captured"),
            closed_at=func.current_timestamp(),
        )
        .returning(*_HOLD_COLUMNS),
        "due_holds": select(h.id).where(
            owner, h.status == HoldStatus.OPEN.value, h.expires_at <= bindparam("now", type_=BigInteger)
        ),
        "set_next_expiry": update(BALANCES)
        .where(BALANCES.c.user_id == bindparam("owner"), BALANCES.c.asset == bindparam("of_asset"))
        .values(next_expiry=select(func.min(both.c.at)).scalar_subquery()),
        "due_balances": select(BALANCES.c.user_id, BALANCES.c.asset)
        .where(BALANCES.c.next_expiry <= bindparam("now", type_=BigInteger))
        .limit(bindparam("limit")),
        "external_id": select(USERS.c.external_id).where(USERS.c.id == bindparam("user_id")),
        "balances": select(
            BALANCES.c.asset,
            BALANCES.c.available,
            BALANCES.c.reserved,
            BALANCES.c.held,
            BALANCES.c.debt,
            BALANCES.c.next_expiry,
        )
        .where(BALANCES.c.user_id == bindparam("user_id"))
        .order_by(BALANCES.c.asset),
        "pending": select(ORDERS.c.asset, func.sum(ORDERS.c.units + ORDERS.c.bonus))
        .where(
            ORDERS.c.user_id == bindparam("user_id"),
            ORDERS.c.status == OrderStatus.AWAITING_PAYMENT.value,
        )
        .group_by(ORDERS.c.asset),
        "entry_by_key": select(ENTRIES.c.id).where(ENTRIES.c.idempotency_key == bindparam("key")),
    }


def _customer(conn: SqlConnection, user_id: int) -> dict[str, Any]:
    external_id = conn.execute(_statements()["external_id"], {"user_id": user_id}).scalar()
    return {"id": user_id, "external_id": external_id}


def _event_data(conn: SqlConnection, entry: EntryRow, **extra: Any) -> dict[str, Any]:
    return {
        "customer": _customer(conn, entry.user_id),
        "asset": entry.asset,
        "units": entry.units,
        "balance": max(entry.balance_after, 0),
        "debt": max(-entry.balance_after, 0),
        "entry": {"id": entry.id, "kind": entry.kind, "reason": entry.reason},
        **extra,
    }


# --- credits ---------------------------------------------------------------------------------


def _debt_paid_by(conn: SqlConnection, user_id: int, asset: str, units: int) -> int:
    """How much of the debt ``units`` coming in pay first (under the balance's row lock)."""
    balance = lock_balance(conn, user_id, asset)
    return min(balance.debt, units) if balance is not None else 0


def credit(
    conn: SqlConnection,
    *,
    user_id: int,
    asset: str,
    units: int,
    kind: str,
    lot_kind: LotKind,
    key: str,
    reason: str = "",
    expires_at: int | None = None,
    order_id: int | None = None,
    amount: int | None = None,
    details: str | None = None,
) -> EntryRow | None:
    """Add units as a new lot, after paying the debt; ``None`` if ``key`` was used (nothing changed)."""
    if units <= 0:
        raise ValueError("a credit adds at least one unit")
    paid = _debt_paid_by(conn, user_id, asset, units)
    entry = post_entry(
        conn,
        user_id=user_id,
        asset=asset,
        units=units,
        debt_units=-paid,
        kind=kind,
        idempotency_key=key,
        order_id=order_id,
        amount=amount,
        reason=reason,
        details=details,
        expiry=expires_at if units > paid else None,
    )
    if entry is None:
        return None
    open_lot(
        conn,
        user_id=user_id,
        asset=asset,
        kind=lot_kind,
        units=units,
        remaining=units - paid,
        entry_id=entry.id,
        expires_at=expires_at,
        order_id=order_id,
        reason=reason,
    )
    emit(conn, "balance.credited", user_id=user_id, data=_event_data(conn, entry, debt_paid=paid))
    return entry


# --- spending --------------------------------------------------------------------------------


def _spendable(conn: SqlConnection, user_id: int, asset: str) -> int:
    balance = lock_balance(conn, user_id, asset)
    return 0 if balance is None else max(balance.available, 0)


def _spend(
    conn: SqlConnection,
    *,
    user_id: int,
    asset: str,
    units: int,
    kind: str,
    key: str,
    reason: str,
    details: str | None,
    now: int,
    reserve: bool,
    hold_expires_at: int | None = None,
) -> tuple[EntryRow, list[Move]] | None:
    """The one spending path of debits and holds: conditional UPDATE, entry, lots."""
    if units <= 0:
        raise ValueError("spend at least one unit")
    for attempt in (1, 2):
        try:
            entry = post_entry(
                conn,
                user_id=user_id,
                asset=asset,
                units=-units,
                reserved_units=units if reserve else 0,
                kind=kind,
                idempotency_key=key,
                reason=reason,
                details=details,
                expiry=hold_expires_at,
                spend_at=now,
            )
            break
        except NotCovered:
            if conn.execute(_statements()["entry_by_key"], {"key": key}).first() is not None:
                return None  # done before (the balance it spent is gone since): nothing to do
            # Refused for an expiry not yet swept? Sweep (or find that another transaction just
            # did: then expire_due has nothing to do), and try once more either way.
            if attempt == 1:
                expire_due(conn, user_id=user_id, asset=asset, now=now)
                continue
            raise Insufficient(_spendable(conn, user_id, asset)) from None
    if entry is None:
        return None
    moves = plan_take(conn, user_id=user_id, asset=asset, units=units)
    if -sum(delta for _, delta in moves) != units:
        # available covered it, so the lots must: the invariant is broken. Roll back, loudly.
        raise RuntimeError(f"lots of user {user_id} {asset} do not cover their balance")
    apply_moves(conn, entry.id, moves)
    return entry, moves


def _report_spending(conn: SqlConnection, entry: EntryRow, units: int, low_threshold: int | None) -> None:
    after = entry.balance_after
    before = after + units
    if after <= 0 < before:
        emit(conn, "balance.depleted", user_id=entry.user_id, data=_event_data(conn, entry))
    elif low_threshold is not None and after < low_threshold <= before:
        emit(
            conn, "balance.low", user_id=entry.user_id, data=_event_data(conn, entry, threshold=low_threshold)
        )


def debit(
    conn: SqlConnection,
    *,
    user_id: int,
    asset: str,
    units: int,
    key: str,
    reason: str = "",
    details: str | None = None,
    now: int | None = None,
    low_threshold: int | None = None,
    kind: str = "debit",
) -> Debited | None:
    """Spend ``units`` at once; raises :class:`Insufficient`, ``None`` if ``key`` was used."""
    spent = _spend(
        conn,
        user_id=user_id,
        asset=asset,
        units=units,
        kind=kind,
        key=key,
        reason=reason,
        details=details,
        now=_now(now),
        reserve=False,
    )
    if spent is None:
        return None
    entry, moves = spent
    _report_spending(conn, entry, units, low_threshold)
    return Debited(entry.id, units, max(entry.balance_after, 0), tuple((lot, -d) for lot, d in moves))


# --- holds -----------------------------------------------------------------------------------


def load_hold(conn: SqlConnection, hold_id: str, *, lock: bool = False) -> HoldRow | None:
    row = conn.execute(_statements()["hold_locked" if lock else "hold"], {"id": hold_id}).first()
    return None if row is None else HoldRow(*row)


def place_hold(
    conn: SqlConnection,
    *,
    user_id: int,
    asset: str,
    units: int,
    expires_at: int,
    key: str,
    reason: str = "",
    details: str | None = None,
    now: int | None = None,
    low_threshold: int | None = None,
) -> HoldRow | None:
    """Reserve ``units`` until ``expires_at``; raises :class:`Insufficient`, ``None`` if ``key`` was used."""
    now = _now(now)
    if expires_at <= now:
        raise ValueError("a hold expires in the future")
    spent = _spend(
        conn,
        user_id=user_id,
        asset=asset,
        units=units,
        kind="hold",
        key=key,
        reason=reason,
        details=details,
        now=now,
        reserve=True,
        hold_expires_at=expires_at,
    )
    if spent is None:
        return None
    entry, _ = spent
    hold_id = "hold_" + secrets.token_urlsafe(18)
    conn.execute(
        _statements()["insert_hold"],
        {
            "id": hold_id,
            "user_id": user_id,
            "asset": asset,
            "units": units,
            "expires_at": expires_at,
            "entry_id": entry.id,
            "reason": reason[:500],
        },
    )
    _report_spending(conn, entry, units, low_threshold)
    return HoldRow(
        hold_id, user_id, asset, units, 0, HoldStatus.OPEN.value, expires_at, reason[:500], entry.id
    )


def _close(conn: SqlConnection, hold: HoldRow, status: HoldStatus, captured: int) -> HoldRow | None:
    """Close an open hold (under its balance lock); spend ``captured``, give the rest back."""
    row = conn.execute(
        _statements()["close_hold"], {"hold_id": hold.id, "status": status.value, "captured": captured}
    ).first()
    if row is None:
        return None
    closed = HoldRow(*row)
    rest = hold.units - captured
    paid = _debt_paid_by(conn, hold.user_id, hold.asset, rest)
    kind = {"captured": "capture", "released": "release", "expired": "hold_expiry"}[status.value]
    entry = post_entry(
        conn,
        user_id=hold.user_id,
        asset=hold.asset,
        units=rest,
        reserved_units=-hold.units,
        debt_units=-paid,
        kind=kind,
        idempotency_key=f"{kind}:{hold.id}",
        reason=f"hold {hold.id}: {captured} of {hold.units} spent",
    )
    if entry is None:  # cannot happen: the conditional close above ran once
        raise RuntimeError(f"hold {hold.id} closed twice")
    if rest - paid > 0:
        apply_moves(conn, entry.id, plan_give_back(movements_of(conn, hold.entry_id), rest - paid))
    _set_next_expiry(conn, hold.user_id, hold.asset)
    if status is HoldStatus.EXPIRED:
        emit(
            conn,
            "hold.expired",
            user_id=hold.user_id,
            data=_event_data(conn, entry, hold={"id": hold.id, "units": hold.units}),
        )
    return closed


def _end_hold(conn: SqlConnection, hold_id: str, status: HoldStatus, captured: int, now: int) -> HoldRow:
    hold = load_hold(conn, hold_id)
    if hold is None:
        raise HoldNotFound(hold_id)
    if captured > hold.units:
        raise CaptureTooLarge(f"the hold has {hold.units} units")
    lock_balance(conn, hold.user_id, hold.asset)  # lock order: balance, then the hold
    hold = load_hold(conn, hold_id, lock=True) or hold
    if hold.status == HoldStatus.OPEN and hold.expires_at <= now:
        # Released as expired now, and returned (not raised: this transaction must commit it,
        # and an exception would roll back the savepoint ``run`` puts around it on PostgreSQL).
        expire_due(conn, user_id=hold.user_id, asset=hold.asset, now=now)
        return load_hold(conn, hold_id) or hold
    if hold.status != HoldStatus.OPEN:
        raise HoldClosed(hold.status, hold)
    closed = _close(conn, hold, status, captured)
    if closed is None:
        current = load_hold(conn, hold_id) or hold
        raise HoldClosed(current.status, current)
    # Units given back to a lot that expired meanwhile leave with it now.
    expire_due(conn, user_id=hold.user_id, asset=hold.asset, now=now)
    return closed


def capture_hold(conn: SqlConnection, hold_id: str, units: int, *, now: int | None = None) -> HoldRow:
    """Spend ``units`` (at most the hold's) of an open hold; the rest goes back to the lots.

    A hold past its expiry is released as expired instead and returned with status ``expired``
    (commit it, answer that it expired); one already closed raises :class:`HoldClosed`.
    """
    if units < 0:
        raise ValueError("capture zero or more units")
    return _end_hold(conn, hold_id, HoldStatus.CAPTURED, units, _now(now))


def release_hold(conn: SqlConnection, hold_id: str, *, now: int | None = None) -> HoldRow:
    """Give all of an open hold back (status ``expired`` if it had expired: the same units return)."""
    return _end_hold(conn, hold_id, HoldStatus.RELEASED, 0, _now(now))


def list_holds(
    conn: SqlConnection, user_id: int, *, status: str | None = None, after: str | None = None, limit: int = 50
) -> list[HoldRow]:
    """A page of one buyer's holds, ordered by id (opaque, random: a stable keyset)."""
    stmt = select(*_HOLD_COLUMNS).where(HOLDS.c.user_id == user_id)
    if status is not None:
        stmt = stmt.where(HOLDS.c.status == status)
    if after is not None:
        stmt = stmt.where(HOLDS.c.id > after)
    rows = conn.execute(stmt.order_by(HOLDS.c.id).limit(max(1, min(limit, 500))))
    return [HoldRow(*row) for row in rows]


# --- expiry ----------------------------------------------------------------------------------


def _set_next_expiry(conn: SqlConnection, user_id: int, asset: str) -> None:
    conn.execute(_statements()["set_next_expiry"], {"owner": user_id, "of_asset": asset})


def expire_due(conn: SqlConnection, *, user_id: int, asset: str, now: int) -> bool:
    """Release expired holds and empty expired lots of one balance; False if nothing was due."""
    balance = lock_balance(conn, user_id, asset)
    if balance is None or balance.next_expiry is None or balance.next_expiry > now:
        return False
    statements = _statements()
    for (hold_id,) in conn.execute(
        statements["due_holds"], {"user_id": user_id, "asset": asset, "now": now}
    ).all():
        hold = load_hold(conn, hold_id, lock=True)
        if hold is not None and hold.status == HoldStatus.OPEN:
            _close(conn, hold, HoldStatus.EXPIRED, 0)
    for lot_id, remaining in due_lots(conn, user_id=user_id, asset=asset, now=now):
        balance = lock_balance(conn, user_id, asset)
        debt = balance.debt if balance is not None else 0
        entry = post_entry(
            conn,
            user_id=user_id,
            asset=asset,
            units=-remaining,
            kind="expiry",
            # A lot can expire twice (a hold gave units back after): the lock makes it once each.
            idempotency_key=f"expiry:{lot_id}:{secrets.token_hex(8)}",
            reason=f"lot {lot_id} expired",
        )
        if entry is None or debt:
            raise RuntimeError(f"lot {lot_id} expiring while the balance is in debt")
        apply_moves(conn, entry.id, [(lot_id, -remaining)])
        _report_spending(conn, entry, remaining, None)
    _set_next_expiry(conn, user_id, asset)
    return True


def anything_due(conn: SqlConnection, *, now: int | None = None) -> bool:
    """Whether some balance has an expiry to post (a read: the sweeper asks before it writes)."""
    return conn.execute(_statements()["due_balances"], {"now": _now(now), "limit": 1}).first() is not None


def sweep(conn: SqlConnection, *, now: int | None = None, limit: int = 200) -> int:
    """Expire what is due on up to ``limit`` balances (a periodic job); how many were swept."""
    now = _now(now)
    due = conn.execute(_statements()["due_balances"], {"now": now, "limit": limit}).all()
    return sum(expire_due(conn, user_id=int(user_id), asset=asset, now=now) for user_id, asset in due)


# --- take-backs (refunds, disputes) ----------------------------------------------------------


def take_back(
    conn: SqlConnection,
    *,
    user_id: int,
    asset: str,
    units: int,
    kind: str,
    key: str,
    order_id: int,
    held_units: int = 0,
    amount: int | None = None,
    reason: str = "",
) -> EntryRow | None:
    """Take units back for an order: its own lot first, then the others; the rest becomes debt.

    ``held_units`` moves them into ``held`` (a dispute) instead of out. ``None`` if ``key`` was used.
    """
    lock_balance(conn, user_id, asset)
    moves = plan_take(conn, user_id=user_id, asset=asset, units=units, first_lot=lot_of_order(conn, order_id))
    shortfall = units + sum(delta for _, delta in moves)
    entry = post_entry(
        conn,
        user_id=user_id,
        asset=asset,
        units=-units,
        held_units=held_units,
        debt_units=shortfall,
        kind=kind,
        idempotency_key=key,
        order_id=order_id,
        amount=amount,
        reason=reason,
    )
    if entry is None:
        return None
    apply_moves(conn, entry.id, moves)
    if units:
        emit(conn, "balance.reversed", user_id=user_id, data=_event_data(conn, entry, debt_added=shortfall))
    return entry


def give_back(
    conn: SqlConnection,
    *,
    user_id: int,
    asset: str,
    units: int,
    kind: str,
    key: str,
    order_id: int,
    taken_by: str,
    held_units: int = 0,
    amount: int | None = None,
    reason: str = "",
) -> EntryRow | None:
    """Undo a :func:`take_back` (a dispute won): pay debt first, the rest to the lots it came from."""
    paid = _debt_paid_by(conn, user_id, asset, units)
    entry = post_entry(
        conn,
        user_id=user_id,
        asset=asset,
        units=units,
        held_units=held_units,
        debt_units=-paid,
        kind=kind,
        idempotency_key=key,
        order_id=order_id,
        amount=amount,
        reason=reason,
    )
    if entry is None:
        return None
    if units - paid > 0:
        taken_id = conn.execute(_statements()["entry_by_key"], {"key": taken_by}).scalar()
        taken = movements_of(conn, int(taken_id)) if taken_id is not None else []
        overflow = lot_of_order(conn, order_id)
        apply_moves(conn, entry.id, plan_give_back(taken, units - paid, overflow_lot=overflow))
        # Units back in an expiring lot: the balance's next expiry may be sooner now.
        _set_next_expiry(conn, user_id, asset)
    if units:
        emit(conn, "balance.credited", user_id=user_id, data=_event_data(conn, entry, debt_paid=paid))
    return entry


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Swept:
    available: int
    reserved: int
    debt: int
    refilled: dict[int, int]
    """Lots that expired holds give units back to and that outlive ``now``: lot id -> units."""


def _as_swept(
    conn: SqlConnection, user_id: int, asset: str, now: int, available: int, reserved: int, debt: int
) -> _Swept:
    """The balance as :func:`expire_due` would leave it, writing nothing.

    The same steps in the same order: each expired hold gives its units back (debt first, then
    the lots it took from), then every expired lot empties.
    """
    given: dict[int, int] = {}
    due = conn.execute(_statements()["due_holds"], {"user_id": user_id, "asset": asset, "now": now}).all()
    for (hold_id,) in due:
        hold = load_hold(conn, hold_id)
        if hold is None or hold.status != HoldStatus.OPEN:
            continue
        paid = min(debt, hold.units)
        debt -= paid
        reserved -= hold.units
        available += hold.units
        for lot_id, units in plan_give_back(movements_of(conn, hold.entry_id), hold.units - paid):
            given[lot_id] = given.get(lot_id, 0) + units
    expiring = dict(due_lots(conn, user_id=user_id, asset=asset, now=now))
    refilled: dict[int, int] = {}
    for lot_id, units in given.items():
        if lot_expires_by(conn, lot_id, now):
            expiring[lot_id] = expiring.get(lot_id, 0) + units
        else:
            refilled[lot_id] = units
    return _Swept(available - sum(expiring.values()), reserved, debt, refilled)


def _next_expiry_as_swept(
    conn: SqlConnection, user_id: int, asset: str, now: int, refilled: Mapping[int, int]
) -> tuple[int | None, int]:
    """The soonest expiry after ``now`` counting the units expired holds give back to their lots
    (still reserved in the table until the sweep runs, so the stored lots do not show them)."""
    at, units = next_expiry(conn, user_id=user_id, asset=asset, after=now)
    for lot_id, given in refilled.items():
        expires = lot_expiry(conn, lot_id)
        if expires is None:
            continue
        if at is None or expires < at:
            at, units = expires, given
        elif expires == at:
            units += given
    return at, units


def customer_balances(
    conn: SqlConnection, user_id: int, *, now: int | None = None
) -> dict[str, AssetBalance]:
    """Every asset of one buyer at ``now``: spendable, reserved, held, pending, debt, next expiry.

    What has expired by ``now`` but is not swept yet is left out, as a debit would find it.
    """
    statements = _statements()
    pending = {
        asset: int(units) for asset, units in conn.execute(statements["pending"], {"user_id": user_id})
    }
    found: dict[str, AssetBalance] = {}
    now = _now(now)
    for asset, available, reserved, held, debt, due_at in conn.execute(
        statements["balances"], {"user_id": user_id}
    ).all():
        available, reserved, debt = int(available), int(reserved), int(debt)
        refilled: dict[int, int] = {}
        if due_at is not None and due_at <= now:
            swept = _as_swept(conn, user_id, asset, now, available, reserved, debt)
            available, reserved, debt, refilled = swept.available, swept.reserved, swept.debt, swept.refilled
        at, expiring = _next_expiry_as_swept(conn, user_id, asset, now, refilled)
        found[asset] = AssetBalance(
            asset=asset,
            available=max(available, 0),
            reserved=reserved,
            held=int(held),
            pending=pending.pop(asset, 0),
            debt=debt,
            next_expiry_units=expiring,
            next_expiry_at=at,
        )
    for asset, units in pending.items():
        found[asset] = AssetBalance(asset, 0, 0, 0, units, 0, 0, None)
    return dict(sorted(found.items()))


def check_credits(conn: SqlConnection) -> list[str]:
    """Lots against their movements and balances against their lots; empty is good."""
    problems = check_lots(conn)
    lot_sums = (
        select(LOTS.c.user_id, LOTS.c.asset, func.sum(LOTS.c.remaining).label("remaining"))
        .group_by(LOTS.c.user_id, LOTS.c.asset)
        .subquery()
    )
    open_holds = (
        select(HOLDS.c.user_id, HOLDS.c.asset, func.sum(HOLDS.c.units - HOLDS.c.captured).label("open"))
        .where(HOLDS.c.status == HoldStatus.OPEN.value)
        .group_by(HOLDS.c.user_id, HOLDS.c.asset)
        .subquery()
    )
    b = BALANCES.c
    rows = conn.execute(
        select(
            b.user_id,
            b.asset,
            b.available,
            b.debt,
            b.reserved,
            func.coalesce(lot_sums.c.remaining, 0),
            func.coalesce(open_holds.c.open, 0),
        )
        .select_from(BALANCES)
        .outerjoin(lot_sums, (lot_sums.c.user_id == b.user_id) & (lot_sums.c.asset == b.asset))
        .outerjoin(open_holds, (open_holds.c.user_id == b.user_id) & (open_holds.c.asset == b.asset))
    )
    for user_id, asset, available, debt, reserved, remaining, held_open in rows:
        where = f"user {user_id} {asset}"
        if int(remaining) - debt != available:
            problems.append(f"{where}: lots hold {remaining}, debt {debt}, balance {available}")
        if debt < 0 or reserved < 0:
            problems.append(f"{where}: negative debt {debt} or reserved {reserved}")
        if debt > 0 and int(remaining) > 0:
            problems.append(f"{where}: debt {debt} while lots hold {remaining}")
        if reserved != int(held_open):
            problems.append(f"{where}: reserved {reserved}, open holds {held_open}")
    return problems
