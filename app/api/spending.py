"""Spending over the host API: debits, holds, grants, and the lists of entries, lots and holds.

Every change is one synchronous operation of the process's money writer (``app.db.writer``:
group commit, answered after its COMMIT), wrapped by the ``Idempotency-Key`` helper
(``app.api.idempotency``). The check-and-spend itself is ``app.money.credits``: one
conditional UPDATE, so no concurrency overdraws. Refusals (insufficient balance, unknown
customer or asset, a closed hold) are answers the operation returns, never exceptions: an
exception would make the writer re-run its whole batch one operation at a time.

The ledger key of a change made with an ``Idempotency-Key`` is derived from it (and the server
key), so even a duplicate that slipped past the stored answers could not spend twice.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, Final

import msgspec
from litestar import Request, Response, get, post
from litestar.params import JSONBody, PathParameter
from sqlalchemy import Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.api.auth import api_read
from app.api.body import strict_body
from app.api.customers import ExternalId, customer_user_id, find_customer_id
from app.api.idempotency import Answer, Idempotency, idempotent, respond
from app.api.keys import KeyRow
from app.api.pagination import Page, PageParams, page_of
from app.api.problems import ProblemDetails, problem_details, problem_responses
from app.catalogue.reload import CatalogueHolder
from app.db.sql import SqlConnection, run
from app.db.writer import get_writer
from app.money.credits import (
    CaptureTooLarge,
    HoldClosed,
    HoldNotFound,
    HoldRow,
    Insufficient,
    capture_hold,
    credit,
    debit,
    list_holds,
    load_hold,
    place_hold,
    release_hold,
)
from app.money.ledger import EntryRow, entries
from app.money.lots import LotRow, list_lots
from app.money.models import LotKind
from app.web.transactions import READ_ONLY_OPT

__all__ = ("ROUTES",)

UNITS_MAX: Final = 2**53
"""Units fit a JSON number exactly (and a BIGINT) up to 2^53."""
HOLD_DEFAULT: Final = 15 * 60
HOLD_MAX: Final = 24 * 3600
GRANT_DAYS_MAX: Final = 36_500

Units = Annotated[int, msgspec.Meta(ge=1, le=UNITS_MAX)]
Asset = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Reason = Annotated[str, msgspec.Meta(max_length=500)]
MetadataKey = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
Metadata = Annotated[
    dict[MetadataKey, Annotated[str, msgspec.Meta(max_length=500)]], msgspec.Meta(max_length=50)
]
HoldId = Annotated[str, PathParameter(min_length=1, max_length=40, pattern=r"^hold_[A-Za-z0-9_-]{1,35}$")]

_USERS: Final[Table] = User.__table__  # type: ignore[assignment]
_EXTERNAL_ID: Final = select(_USERS.c.external_id).where(_USERS.c.id == bindparam("user_id"))


# --- bodies ----------------------------------------------------------------------------------


class DebitIn(msgspec.Struct, forbid_unknown_fields=True):
    asset: Asset
    units: Units
    reason: Reason = ""
    metadata: Metadata = {}


class HoldIn(msgspec.Struct, forbid_unknown_fields=True):
    asset: Asset
    units: Units
    expires_in: Annotated[int, msgspec.Meta(ge=1, le=HOLD_MAX)] = HOLD_DEFAULT
    """Seconds until the hold releases itself (at most 24 h)."""
    reason: Reason = ""
    metadata: Metadata = {}


class CaptureIn(msgspec.Struct, forbid_unknown_fields=True):
    units: Annotated[int, msgspec.Meta(ge=0, le=UNITS_MAX)]
    """At most the hold's units; the rest is released."""


class GrantIn(msgspec.Struct, forbid_unknown_fields=True):
    asset: Asset
    units: Units
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    expires_in_days: Annotated[int, msgspec.Meta(ge=1, le=GRANT_DAYS_MAX)] | None = None
    metadata: Metadata = {}


class LotTaken(msgspec.Struct):
    lot: int
    units: int


class DebitOut(msgspec.Struct):
    id: int
    """The ledger entry."""
    customer: str
    asset: str
    units: int
    available: int
    """Spendable after the debit."""
    lots: list[LotTaken]
    reason: str
    metadata: dict[str, str]


class InsufficientBalance(ProblemDetails, omit_defaults=True):
    """402: the balance does not cover the request; nothing changed."""

    spendable: int = 0


class HoldOut(msgspec.Struct):
    id: str
    customer: str | None
    asset: str
    units: int
    captured: int
    status: str
    """``open``, ``captured``, ``released`` or ``expired``."""
    expires_at: int
    reason: str


class GrantOut(msgspec.Struct):
    id: int
    customer: str
    asset: str
    units: int
    debt_paid: int
    available: int
    expires_at: int | None
    reason: str


class EntryOut(msgspec.Struct):
    id: int
    asset: str
    kind: str
    units: int
    """Signed change of the balance."""
    reserved_units: int
    held_units: int
    debt_units: int
    balance_after: int
    reason: str
    metadata: dict[str, str] | None
    created_at: int


class LotOut(msgspec.Struct):
    id: int
    asset: str
    kind: str
    units: int
    remaining: int
    expires_at: int | None
    order_id: int | None
    reason: str


# --- helpers ---------------------------------------------------------------------------------


def ledger_key(operation: str, server_key_id: int, idempotency_key: str | None) -> str:
    """A change's ledger key: derived from its ``Idempotency-Key`` when it has one."""
    if idempotency_key is None:
        return f"{operation}:{secrets.token_urlsafe(16)}"
    return f"{operation}:{server_key_id}:{idempotency_key}"


def _ledger_key(operation: str, server_key: KeyRow, idempotency: Idempotency) -> str:
    return ledger_key(operation, server_key.id, idempotency.key)


def _details(metadata: dict[str, str]) -> str | None:
    return msgspec.json.encode(metadata).decode() if metadata else None


def _unknown_customer(external_id: str) -> tuple[int, ProblemDetails]:
    return 404, problem_details(
        404, "customer_not_found", f"No customer has the external id {external_id!r}.", param="external_id"
    )


def _unknown_asset(asset: str) -> tuple[int, ProblemDetails]:
    return 404, problem_details(
        404, "asset_not_found", f"The catalogue has no asset {asset!r}.", param="asset"
    )


def _customer_with_asset(
    conn: SqlConnection, external_id: str, asset: str, assets: dict[str, int | None]
) -> int | tuple[int, ProblemDetails]:
    """The customer's user id, or the 404 answer when the asset or the customer is unknown."""
    if asset not in assets:
        return _unknown_asset(asset)
    user_id = find_customer_id(conn, external_id)
    return _unknown_customer(external_id) if user_id is None else user_id


def _insufficient(error: Insufficient) -> tuple[int, InsufficientBalance]:
    return 402, InsufficientBalance(
        type="https://storefront.invalid/problems/insufficient_balance",
        title="Payment Required",
        status=402,
        code="insufficient_balance",
        detail=f"Only {error.spendable} units can be spent.",
        spendable=error.spendable,
    )


def _hold_out(conn: SqlConnection, hold: HoldRow) -> HoldOut:
    external_id = conn.execute(_EXTERNAL_ID, {"user_id": hold.user_id}).scalar()
    return HoldOut(
        id=hold.id,
        customer=external_id,
        asset=hold.asset,
        units=hold.units,
        captured=hold.captured,
        status=hold.status,
        expires_at=hold.expires_at,
        reason=hold.reason,
    )


def assets_of(catalogue: CatalogueHolder) -> dict[str, int | None]:
    """The catalogue's assets and their low-balance thresholds."""
    return {asset.id: asset.low_balance for asset in catalogue.catalogue.assets}


async def _write(request: Request[Any, Any, Any], operation: Callable[[SqlConnection], Any]) -> Any:
    return await get_writer(request.app).call(operation)


# --- debits ----------------------------------------------------------------------------------


def _spending(
    conn: SqlConnection,
    external_id: str,
    body: DebitIn | HoldIn,
    assets: dict[str, int | None],
    spend: Callable[[int], tuple[int, Any]],
) -> tuple[int, Any]:
    """A debit's or a hold's answer: 404 for an unknown customer or asset, 402 when it would overdraw."""
    user_id = _customer_with_asset(conn, external_id, body.asset, assets)
    if isinstance(user_id, tuple):
        return user_id
    try:
        return spend(user_id)
    except Insufficient as error:
        return _insufficient(error)


def _spend_args(body: DebitIn | HoldIn, assets: dict[str, int | None], key: str, now: int) -> dict[str, Any]:
    """What ``debit`` and ``place_hold`` take alike from the request."""
    return {
        "asset": body.asset,
        "units": body.units,
        "key": key,
        "reason": body.reason,
        "details": _details(body.metadata),
        "now": now,
        "low_threshold": assets[body.asset],
    }


SpendChange = Callable[..., tuple[int, Any]]
"""``debit_change`` or ``hold_change``."""


def spending_operation(
    operation: str,
    change: SpendChange,
    external_id: str,
    body: DebitIn | HoldIn,
    assets: dict[str, int | None],
    server_key_id: int,
    idempotency_key: str | None,
) -> Callable[[SqlConnection], Answer]:
    """The writer operation of a debit or a hold, once per ``Idempotency-Key`` (it pickles)."""
    spend = partial(
        change,
        external_id=external_id,
        body=body,
        assets=assets,
        key=ledger_key(operation, server_key_id, idempotency_key),
        now=int(time.time()),
    )
    return idempotent(idempotency_key, server_key_id, operation, (external_id, body), spend)


def debit_change(
    conn: SqlConnection, *, external_id: str, body: DebitIn, assets: dict[str, int | None], key: str, now: int
) -> tuple[int, Any]:
    """The debit itself, a module-level function: its partial pickles for the writer process."""

    def spend(user_id: int) -> tuple[int, Any]:
        done = debit(conn, user_id=user_id, **_spend_args(body, assets, key, now))
        if done is None:
            return 409, problem_details(409, "already_debited", "This debit was made before.")
        lots = [LotTaken(lot, units) for lot, units in done.lots]
        out = DebitOut(
            done.entry_id,
            external_id,
            body.asset,
            body.units,
            done.available,
            lots,
            body.reason,
            body.metadata,
        )
        return 201, out

    return _spending(conn, external_id, body, assets, spend)


def hold_change(
    conn: SqlConnection, *, external_id: str, body: HoldIn, assets: dict[str, int | None], key: str, now: int
) -> tuple[int, Any]:
    """The hold itself (module-level, like :func:`debit_change`)."""

    def spend(user_id: int) -> tuple[int, Any]:
        hold = place_hold(
            conn, user_id=user_id, expires_at=now + body.expires_in, **_spend_args(body, assets, key, now)
        )
        if hold is None:
            return 409, problem_details(409, "already_held", "This hold was placed before.")
        return 201, _hold_out(conn, hold)

    return _spending(conn, external_id, body, assets, spend)


@post(
    "/customers/{external_id:str}/debits",
    opt={"scope": "spend"},
    status_code=201,
    responses=problem_responses(402, 404, 409),
    summary="Spend units now",
)
async def create_debit(
    request: Request[Any, Any, Any],
    external_id: ExternalId,
    data: JSONBody[DebitIn],
    server_key: KeyRow,
    idempotency: Idempotency,
    catalogue: CatalogueHolder,
) -> Response[DebitOut]:
    """Checks and spends in one statement; 402 ``insufficient_balance`` (``spendable``): no change."""
    body = await strict_body(request, DebitIn)
    operation = spending_operation(
        "debit", debit_change, external_id, body, assets_of(catalogue), server_key.id, idempotency.key
    )
    return respond(await _write(request, operation))


# --- holds -----------------------------------------------------------------------------------


@post(
    "/customers/{external_id:str}/holds",
    opt={"scope": "spend"},
    status_code=201,
    responses=problem_responses(402, 404, 409),
    summary="Reserve units, to capture or release later",
)
async def create_hold(
    request: Request[Any, Any, Any],
    external_id: ExternalId,
    data: JSONBody[HoldIn],
    server_key: KeyRow,
    idempotency: Idempotency,
    catalogue: CatalogueHolder,
) -> Response[HoldOut]:
    """Units move from ``available`` to ``reserved``; an open hold past ``expires_at`` releases itself."""
    body = await strict_body(request, HoldIn)
    operation = spending_operation(
        "hold", hold_change, external_id, body, assets_of(catalogue), server_key.id, idempotency.key
    )
    return respond(await _write(request, operation))


def _closed(error: HoldClosed) -> tuple[int, ProblemDetails]:
    return 409, problem_details(409, f"hold_{error.status}", f"The hold is already {error.status}.")


def _end(
    hold_id: str, action: Callable[[SqlConnection], HoldRow], wanted: str
) -> Callable[[SqlConnection], Any]:
    def change(conn: SqlConnection) -> tuple[int, Any]:
        try:
            hold = action(conn)
        except HoldNotFound:
            return 404, problem_details(404, "hold_not_found", "No hold has this id.", param="hold_id")
        except HoldClosed as error:
            return _closed(error)
        except CaptureTooLarge as error:
            return 422, problem_details(422, "capture_too_large", str(error), param="units")
        if hold.status != wanted:  # it had expired: released now, the capture refused
            return 409, problem_details(409, "hold_expired", "The hold expired; its units were released.")
        return 200, _hold_out(conn, hold)

    return change


@post(
    "/holds/{hold_id:str}/capture",
    opt={"scope": "spend"},
    status_code=200,
    responses=problem_responses(404, 409),
    summary="Spend part or all of a hold; the rest is released",
)
async def capture(
    request: Request[Any, Any, Any], hold_id: HoldId, data: JSONBody[CaptureIn], idempotency: Idempotency
) -> Response[HoldOut]:
    """409 ``hold_captured``, ``hold_released`` or ``hold_expired`` when the hold is not open."""
    body = await strict_body(request, CaptureIn)
    now = int(time.time())
    change = _end(hold_id, lambda conn: capture_hold(conn, hold_id, body.units, now=now), "captured")
    return respond(await _write(request, idempotency.operation("capture", (hold_id, body), change)))


@post(
    "/holds/{hold_id:str}/release",
    opt={"scope": "spend"},
    status_code=200,
    responses=problem_responses(404, 409),
    summary="Give all of a hold back",
)
async def release(
    request: Request[Any, Any, Any], hold_id: HoldId, idempotency: Idempotency
) -> Response[HoldOut]:
    now = int(time.time())
    change = _end(hold_id, lambda conn: release_hold(conn, hold_id, now=now), "released")
    return respond(await _write(request, idempotency.operation("release", hold_id, change)))


@get(
    "/holds/{hold_id:str}",
    opt={"scope": "read", READ_ONLY_OPT: True},
    responses=problem_responses(404),
    summary="One hold",
)
async def get_hold(request: Request[Any, Any, Any], hold_id: HoldId) -> Response[HoldOut]:
    def read(conn: SqlConnection) -> tuple[int, Any]:
        hold = load_hold(conn, hold_id)
        if hold is None:
            return 404, problem_details(404, "hold_not_found", "No hold has this id.", param="hold_id")
        return 200, _hold_out(conn, hold)

    status, body = await api_read(request, read)
    media = "application/problem+json" if status >= 400 else "application/json"
    return Response(body, status_code=status, media_type=media)


# --- grants ----------------------------------------------------------------------------------


@post(
    "/customers/{external_id:str}/grants",
    opt={"scope": "grant"},
    status_code=201,
    responses=problem_responses(404, 409),
    summary="Give promotional units",
)
async def create_grant(
    request: Request[Any, Any, Any],
    external_id: ExternalId,
    data: JSONBody[GrantIn],
    server_key: KeyRow,
    idempotency: Idempotency,
    catalogue: CatalogueHolder,
) -> Response[GrantOut]:
    """A promotional lot (spent before paid units), with an optional expiry; a debt is paid first."""
    body = await strict_body(request, GrantIn)
    assets = assets_of(catalogue)
    key = _ledger_key("grant", server_key, idempotency)
    expires_at = int(time.time()) + body.expires_in_days * 86_400 if body.expires_in_days else None

    def change(conn: SqlConnection) -> tuple[int, Any]:
        user_id = _customer_with_asset(conn, external_id, body.asset, assets)
        if isinstance(user_id, tuple):
            return user_id
        entry = credit(
            conn,
            user_id=user_id,
            asset=body.asset,
            units=body.units,
            kind="grant",
            lot_kind=LotKind.PROMOTIONAL,
            key=key,
            reason=body.reason,
            expires_at=expires_at,
            details=_details(body.metadata),
        )
        if entry is None:
            return 409, problem_details(409, "already_granted", "This grant was made before.")
        out = GrantOut(
            id=entry.id,
            customer=external_id,
            asset=body.asset,
            units=body.units,
            debt_paid=-entry.debt_units,
            available=max(entry.balance_after, 0),
            expires_at=expires_at,
            reason=body.reason,
        )
        return 201, out

    return respond(await _write(request, idempotency.operation("grant", (external_id, body), change)))


# --- lists -----------------------------------------------------------------------------------


def _entry_out(entry: EntryRow) -> EntryOut:
    metadata = msgspec.json.decode(entry.details) if entry.details else None
    return EntryOut(
        id=entry.id,
        asset=entry.asset,
        kind=entry.kind,
        units=entry.units,
        reserved_units=entry.reserved_units,
        held_units=entry.held_units,
        debt_units=entry.debt_units,
        balance_after=entry.balance_after,
        reason=entry.reason,
        metadata=metadata,
        created_at=int(entry.created_at.timestamp()),
    )


@get(
    "/customers/{external_id:str}/entries",
    opt={"scope": "read", READ_ONLY_OPT: True},
    responses=problem_responses(404),
    summary="The customer's ledger entries, newest first",
)
async def list_entries(external_id: ExternalId, page: PageParams, db_session: AsyncSession) -> Page[EntryOut]:
    user_id = await customer_user_id(db_session, external_id)
    rows = await run(db_session, entries, user_id, limit=page.fetch, before_id=page.after_int())
    return page_of([_entry_out(row) for row in rows], page, lambda entry: entry.id)


def _lot_out(lot: LotRow) -> LotOut:
    return LotOut(
        lot.id, lot.asset, lot.kind, lot.units, lot.remaining, lot.expires_at, lot.order_id, lot.reason
    )


@get(
    "/customers/{external_id:str}/lots",
    opt={"scope": "read", READ_ONLY_OPT: True},
    responses=problem_responses(404),
    summary="The customer's credit lots, oldest first",
)
async def list_customer_lots(
    external_id: ExternalId, page: PageParams, db_session: AsyncSession
) -> Page[LotOut]:
    user_id = await customer_user_id(db_session, external_id)
    rows = await run(db_session, list_lots, user_id, after_id=page.after_int(), limit=page.fetch)
    return page_of([_lot_out(row) for row in rows], page, lambda lot: lot.id)


@get(
    "/customers/{external_id:str}/holds",
    opt={"scope": "read", READ_ONLY_OPT: True},
    responses=problem_responses(404),
    summary="The customer's holds",
)
async def list_customer_holds(
    external_id: ExternalId, page: PageParams, db_session: AsyncSession
) -> Page[HoldOut]:
    user_id = await customer_user_id(db_session, external_id)
    after = page.after if isinstance(page.after, str) else None

    def read(conn: SqlConnection) -> list[HoldOut]:
        return [
            HoldOut(h.id, external_id, h.asset, h.units, h.captured, h.status, h.expires_at, h.reason)
            for h in list_holds(conn, user_id, after=after, limit=page.fetch)
        ]

    return page_of(await run(db_session, read), page, lambda hold: hold.id)


ROUTES: list[Any] = [
    create_debit,
    create_hold,
    capture,
    release,
    get_hold,
    create_grant,
    list_entries,
    list_customer_lots,
    list_customer_holds,
]
