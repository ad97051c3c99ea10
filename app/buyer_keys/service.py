"""Buyer API keys: make, list, revoke, and verify-and-charge in one call.

A buyer of API quota makes a key for their own calls; the host's API gateway sends each call's
key and cost to ``POST /api/v1/keys/verify``, which checks the key and charges the buyer's
balance at once (:func:`verify_and_charge`). The key is shown once; only its SHA-256 is stored,
with a visible prefix (``sk_<asset>_xxxxxx``) so lists can tell keys apart. Server keys of host
applications start ``sf_live_``/``sf_test_``; buyer keys always start ``sk_``, so the two are
never confused.

Like the money core, every function is synchronous, runs in the caller's transaction on a
connection and never commits; async callers use ``app.db.sql.run``. The cap is enforced by the
database: one conditional upsert on ``buyer_key_usage`` (``... DO UPDATE ... WHERE units + cost
<= cap RETURNING units``), inside the same savepoint as the debit, so a refused debit leaves no
usage counted.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, Final, cast

import msgspec
from msgspec.structs import replace
from sqlalchemy import Table, and_, bindparam, case, literal, select, update

from app.accounts.models import User
from app.buyer_keys.models import BuyerKey, KeyUsage
from app.db.sql import SavepointConnection, SqlConnection, dialect_insert
from app.money.credits import Insufficient, customer_balances, debit

__all__ = (
    "MAX_COST",
    "CapPeriod",
    "Code",
    "CreatedKey",
    "KeyInputError",
    "KeyNotFound",
    "KeyView",
    "Verdict",
    "cap_period_of",
    "create_key",
    "hash_key",
    "list_keys",
    "revoke_key",
    "verify_and_charge",
)

KEYS = cast(Table, BuyerKey.__table__)
USAGE = cast(Table, KeyUsage.__table__)
USERS = cast(Table, User.__table__)

KEY_PREFIX: Final = "sk_"
"""Every buyer key starts so; server keys start ``sf_live_``/``sf_test_``."""
SHOWN_SECRET_CHARS: Final = 6
"""Characters of the random part kept in the visible prefix: enough to tell keys apart."""
NAME_MAX: Final = 100
MAX_COST: Final = 2**53
"""Largest cost or cap: every JSON client reads it exactly (2^53), and it fits a BIGINT."""
ASSET_SLUG_MAX: Final = 12


class CapPeriod(StrEnum):
    """A cap counts units per UTC day or per UTC calendar month."""

    DAY = "day"
    MONTH = "month"


class Code(StrEnum):
    """Why a verify was refused (``Verdict.code``)."""

    KEY_INVALID = "key_invalid"
    """No such key (also a string that is not shaped like one)."""
    KEY_REVOKED = "key_revoked"
    KEY_EXPIRED = "key_expired"
    KEY_CAP_REACHED = "key_cap_reached"
    INSUFFICIENT_BALANCE = "insufficient_balance"


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to one verify: the gateway lets the call through exactly when ``valid``.

    ``remaining`` is the owner's spendable balance after this call, where it was read (a charge,
    a cost-0 check, an insufficient balance); ``cap_remaining`` is what the key's cap still
    allows this period, for capped keys. An unknown key says nothing about anybody.
    """

    valid: bool
    code: str | None = None
    key_id: int | None = None
    user_id: int | None = None
    external_id: str | None = None
    asset: str | None = None
    cost: int = 0
    charged: int = 0
    remaining: int | None = None
    cap_remaining: int | None = None
    cap_period: str | None = None


class KeyInputError(ValueError):
    """What a buyer typed cannot make a key; ``field`` names the form field, nothing was written."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class KeyNotFound(LookupError):
    """No key with this id belongs to this buyer (someone else's key is not found either)."""


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key; ``secret`` is the full key, shown to the buyer once and never stored."""

    id: int
    secret: str
    prefix: str
    name: str
    asset: str
    cap_units: int | None
    cap_period: str | None
    expires_at: int | None


@dataclass(frozen=True, slots=True)
class KeyView:
    """A key in the buyer's list, with its use."""

    id: int
    name: str
    prefix: str
    asset: str
    cap_units: int | None
    cap_period: str | None
    expires_at: int | None
    calls: int
    used_units: int
    used_this_period: int
    """Units charged in the current cap period (0 for a key without a cap: nothing is counted)."""
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    status: str
    """``active``, ``revoked`` or ``expired``."""


def hash_key(secret: str) -> str:
    """The stored form of a key: its SHA-256 in hex (a key is 144 random bits: no slow hash needed)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _asset_slug(asset: str) -> str:
    slug = re.sub(r"[^a-z0-9]", "", asset.lower())[:ASSET_SLUG_MAX]
    return slug or "key"


def cap_period_of(period: str, now: int) -> str:
    """The usage row a call at ``now`` counts in: ``2026-12-01`` (day) or ``2026-12`` (month), UTC."""
    moment = time.gmtime(now)
    return time.strftime("%Y-%m-%d" if period == CapPeriod.DAY else "%Y-%m", moment)


def _moment(now: int) -> datetime:
    return datetime.fromtimestamp(now, UTC)


def expiry_of(day: date) -> int:
    """A key that expires on ``day`` works through that whole UTC day: it ends at the next midnight."""
    return int(datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC).timestamp())


def _check(
    name: str, asset: str, cap_units: int | None, cap_period: str | None, expires_on: date | None, now: int
) -> tuple[str, str | None]:
    name = name.strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise KeyInputError("name", "length")
    if not asset or len(asset) > 64:
        raise KeyInputError("asset", "unknown")
    if (cap_units is None) != (cap_period is None):
        raise KeyInputError("cap", "both")
    if cap_units is not None:
        if isinstance(cap_units, bool) or not 1 <= cap_units <= MAX_COST:
            raise KeyInputError("cap", "range")
        if cap_period not in (CapPeriod.DAY, CapPeriod.MONTH):
            raise KeyInputError("cap_period", "unknown")
    if expires_on is not None and expiry_of(expires_on) <= now:
        raise KeyInputError("expires", "past")
    return name, cap_period


def create_key(
    conn: SqlConnection,
    *,
    user_id: int,
    asset: str,
    name: str,
    cap_units: int | None = None,
    cap_period: str | None = None,
    expires_on: date | None = None,
    now: int | None = None,
) -> CreatedKey:
    """Make a key for ``user_id``'s ``asset``; raises :class:`KeyInputError` (nothing written).

    The caller checks that ``asset`` is one the catalogue sells. ``expires_on`` is the last UTC
    day the key works.
    """
    now = int(time.time()) if now is None else now
    name, period = _check(name, asset, cap_units, cap_period, expires_on, now)
    head = f"{KEY_PREFIX}{_asset_slug(asset)}_"
    secret = head + secrets.token_urlsafe(24)
    prefix = secret[: len(head) + SHOWN_SECRET_CHARS]
    expires_at = expiry_of(expires_on) if expires_on is not None else None
    key_id = conn.execute(
        dialect_insert(conn.dialect.name, KEYS)
        .values(
            user_id=user_id,
            asset=asset,
            name=name,
            prefix=prefix,
            key_hash=hash_key(secret),
            cap_units=cap_units,
            cap_period=period,
            expires_at=expires_at,
            used_units=0,
            calls=0,
            created_at=_moment(now),
        )
        .returning(KEYS.c.id)
    ).scalar()
    return CreatedKey(
        id=int(key_id),
        secret=secret,
        prefix=prefix,
        name=name,
        asset=asset,
        cap_units=cap_units,
        cap_period=period,
        expires_at=expires_at,
    )


def _status(revoked_at: datetime | None, expires_at: int | None, now: int) -> str:
    if revoked_at is not None:
        return "revoked"
    if expires_at is not None and now >= expires_at:
        return "expired"
    return "active"


def list_keys(conn: SqlConnection, user_id: int, *, now: int | None = None) -> list[KeyView]:
    """The buyer's keys, newest first, with their use in all and in the current cap period."""
    now = int(time.time()) if now is None else now
    this_period = case(
        (KEYS.c.cap_period == CapPeriod.DAY.value, literal(cap_period_of(CapPeriod.DAY, now))),
        else_=literal(cap_period_of(CapPeriod.MONTH, now)),
    )
    rows = conn.execute(
        select(
            KEYS.c.id,
            KEYS.c.name,
            KEYS.c.prefix,
            KEYS.c.asset,
            KEYS.c.cap_units,
            KEYS.c.cap_period,
            KEYS.c.expires_at,
            KEYS.c.calls,
            KEYS.c.used_units,
            USAGE.c.units,
            KEYS.c.created_at,
            KEYS.c.last_used_at,
            KEYS.c.revoked_at,
        )
        .select_from(KEYS)
        .outerjoin(USAGE, and_(USAGE.c.key_id == KEYS.c.id, USAGE.c.period == this_period))
        .where(KEYS.c.user_id == user_id)
        .order_by(KEYS.c.id.desc())
    )
    return [
        KeyView(
            id=key_id,
            name=name,
            prefix=prefix,
            asset=asset,
            cap_units=cap_units,
            cap_period=cap_period,
            expires_at=expires_at,
            calls=calls,
            used_units=used_units,
            used_this_period=int(period_units or 0),
            created_at=created_at,
            last_used_at=last_used_at,
            revoked_at=revoked_at,
            status=_status(revoked_at, expires_at, now),
        )
        for (
            key_id,
            name,
            prefix,
            asset,
            cap_units,
            cap_period,
            expires_at,
            calls,
            used_units,
            period_units,
            created_at,
            last_used_at,
            revoked_at,
        ) in rows
    ]


def revoke_key(conn: SqlConnection, *, user_id: int, key_id: int, now: int | None = None) -> bool:
    """Revoke the buyer's own key: True if this call revoked it, False if it already was.

    Raises :class:`KeyNotFound` for an id that is not this buyer's (someone else's included).
    """
    now = int(time.time()) if now is None else now
    revoked = conn.execute(
        update(KEYS)
        .where(KEYS.c.id == key_id, KEYS.c.user_id == user_id, KEYS.c.revoked_at.is_(None))
        .values(revoked_at=_moment(now))
        .returning(KEYS.c.id)
    ).first()
    if revoked is not None:
        return True
    if conn.execute(select(KEYS.c.id).where(KEYS.c.id == key_id, KEYS.c.user_id == user_id)).first():
        return False
    raise KeyNotFound(key_id)


@lru_cache(maxsize=4)
def _statements(dialect: str) -> tuple[Any, Any, Any]:
    """Built once per dialect (see ``app.money.ledger``)."""
    find = (
        select(
            KEYS.c.id,
            KEYS.c.user_id,
            KEYS.c.asset,
            KEYS.c.prefix,
            KEYS.c.cap_units,
            KEYS.c.cap_period,
            KEYS.c.expires_at,
            KEYS.c.revoked_at,
            USERS.c.external_id,
        )
        .select_from(KEYS)
        .join(USERS, USERS.c.id == KEYS.c.user_id)
        .where(KEYS.c.key_hash == bindparam("key_hash"))
    )
    # Counted only while the key is not revoked: a revoke racing this call wins or loses whole.
    use = (
        update(KEYS)
        .where(KEYS.c.id == bindparam("key_id"), KEYS.c.revoked_at.is_(None))
        .values(
            calls=KEYS.c.calls + 1,
            used_units=KEYS.c.used_units + bindparam("cost"),
            last_used_at=bindparam("moment"),
        )
        .returning(KEYS.c.id)
    )
    upsert = dialect_insert(dialect, USAGE).values(
        key_id=bindparam("key_id"), period=bindparam("period"), units=bindparam("cost")
    )
    count = upsert.on_conflict_do_update(
        index_elements=["key_id", "period"],
        set_={"units": USAGE.c.units + upsert.excluded.units},
        where=USAGE.c.units + upsert.excluded.units <= bindparam("cap"),
    ).returning(USAGE.c.units)
    return find, use, count


class _Refused(Exception):
    """Leaves the savepoint (rolling it back) with the verdict to answer."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.code)
        self.verdict = verdict


def _used(conn: SqlConnection, key_id: int, period: str) -> int:
    units = conn.execute(
        select(USAGE.c.units).where(USAGE.c.key_id == key_id, USAGE.c.period == period)
    ).scalar()
    return int(units or 0)


def _spendable(conn: SqlConnection, user_id: int, asset: str, now: int) -> int:
    balance = customer_balances(conn, user_id, now=now).get(asset)
    return max(balance.available, 0) if balance is not None else 0


def verify_and_charge(
    conn: SavepointConnection,
    *,
    key: str,
    cost: int,
    now: int | None = None,
    low_thresholds: Mapping[str, int] | None = None,
) -> Verdict:
    """Check ``key`` and charge ``cost`` units of its asset to its owner, in one go.

    * ``cost > 0``: in one savepoint, count the call on the key (only if not revoked), add
      ``cost`` to this period's usage only if it stays within the cap, and ``debit()`` the
      owner; when the cap or the balance refuses, the savepoint is rolled back and nothing of
      the call stays. Each call is a new charge (ledger key ``key:<id>:<random>``): a gateway
      that retries a verify charges again.
    * ``cost == 0``: only checks. Valid when the key is usable, its cap (if any) is not used
      up, and the owner has a spendable balance above 0; the call is counted, nothing charged.

    ``low_thresholds`` (asset → the catalogue's ``low_balance``) lets the debit report
    ``balance.low`` to hosts when a call takes the balance below it. Needs savepoints: the
    money writer's connection (``app.db.writer``) or SQLAlchemy's (``app.db.sql.run``).
    """
    if isinstance(cost, bool) or not 0 <= cost <= MAX_COST:
        raise ValueError("cost must be an integer from 0 to 2**53")
    now = int(time.time()) if now is None else now
    find, use, count = _statements(conn.dialect.name)
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return Verdict(valid=False, code=Code.KEY_INVALID, cost=cost)
    row = conn.execute(find, {"key_hash": hash_key(key)}).first()
    if row is None:
        return Verdict(valid=False, code=Code.KEY_INVALID, cost=cost)
    key_id, user_id, asset, prefix, cap, cap_period, expires_at, revoked_at, external_id = row
    owner = Verdict(
        valid=False,
        key_id=key_id,
        user_id=user_id,
        external_id=external_id,
        asset=asset,
        cost=cost,
        cap_period=cap_period,
    )
    period = cap_period_of(cap_period, now) if cap is not None else ""
    if revoked_at is not None:
        return replace(owner, code=Code.KEY_REVOKED)
    if expires_at is not None and now >= expires_at:
        return replace(owner, code=Code.KEY_EXPIRED)
    if cap is not None and (cost > cap or (cost == 0 and _used(conn, key_id, period) >= cap)):
        left = max(cap - _used(conn, key_id, period), 0)
        return replace(owner, code=Code.KEY_CAP_REACHED, cap_remaining=left)
    params = {"key_id": key_id, "cost": cost, "moment": _moment(now), "period": period, "cap": cap}
    try:
        with conn.begin_nested():
            if conn.execute(use, params).first() is None:
                raise _Refused(replace(owner, code=Code.KEY_REVOKED))
            cap_remaining = None
            if cap is not None and cost > 0:
                units = conn.execute(count, params).scalar()
                if units is None:
                    left = max(cap - _used(conn, key_id, period), 0)
                    raise _Refused(replace(owner, code=Code.KEY_CAP_REACHED, cap_remaining=left))
                cap_remaining = cap - int(units)
            elif cap is not None:
                cap_remaining = cap - _used(conn, key_id, period)
            if cost == 0:
                spendable = _spendable(conn, user_id, asset, now)
                if spendable <= 0:
                    raise _Refused(
                        replace(
                            owner, code=Code.INSUFFICIENT_BALANCE, remaining=0, cap_remaining=cap_remaining
                        )
                    )
                return replace(owner, valid=True, remaining=spendable, cap_remaining=cap_remaining)
            try:
                debited = debit(
                    conn,
                    user_id=user_id,
                    asset=asset,
                    units=cost,
                    key=f"key:{key_id}:{uuid.uuid4().hex}",
                    reason=f"API key {prefix}",
                    now=now,
                    low_threshold=(low_thresholds or {}).get(asset),
                )
            except Insufficient as refused:
                # What the cap allowed before this call: its usage is rolled back with the savepoint.
                before = None if cap_remaining is None else cap_remaining + cost
                raise _Refused(
                    replace(
                        owner,
                        code=Code.INSUFFICIENT_BALANCE,
                        remaining=max(refused.spendable, 0),
                        cap_remaining=before,
                    )
                ) from None
            if debited is None:  # a fresh random ledger key cannot have been used
                raise RuntimeError("the ledger key of a verify was used before")
            return replace(
                owner, valid=True, charged=cost, remaining=debited.available, cap_remaining=cap_remaining
            )
    except _Refused as refused:
        return refused.verdict
