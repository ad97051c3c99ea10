"""Customers from the host: ``PUT``/``GET /api/v1/customers/{external_id}`` and their sign-in links.

A customer is a shop account (``user_account``) carrying the host's ``external_id``. ``PUT``
creates or updates it, so sending the same ``PUT`` again gives the same customer; an account
that signed up by email and has no ``external_id`` yet is linked by its email. Created
customers get a password nobody can use (argon2 refuses it as a hash): they sign in through
links the host asks for. Uniqueness of ``external_id`` and email is decided by the database's
unique keys (``ON CONFLICT DO NOTHING``), never by a look-up first.

Scopes: reading needs ``read``; writing customers and making sign-in links need ``spend`` or
``grant`` (a host that can move a customer's money may also register them and send them to the
shop; a read-only key can do neither).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Annotated, Any, Final

import msgspec
from litestar import Request, Response, get, post, put
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, PathParameter
from sqlalchemy import Table, and_, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.auth import DEFAULT_NEXT
from app.accounts.models import User
from app.accounts.service import email_problem, normalise_email
from app.accounts.sign_in_links import create_link, link_path
from app.api.auth import api_read
from app.api.idempotency import Idempotency
from app.api.pagination import Page, PageParams, page_of
from app.api.problems import Problem, problem_responses
from app.db.sql import SqlConnection, dialect_insert, run
from app.money.credits import customer_balances
from app.settings import Settings
from app.web.transactions import READ_ONLY_OPT

__all__ = (
    "ROUTES",
    "BalanceOut",
    "CustomerIn",
    "CustomerOut",
    "ExternalId",
    "customer_user_id",
    "find_customer_id",
)

EXTERNAL_ID_PATTERN: Final = r"^[A-Za-z0-9._~:@|+=-]{1,255}$"
"""Letters, digits and ``. _ ~ : @ | + = -``: safe in a path and in logs, room for ``auth0|123``."""
ExternalId = Annotated[
    str,
    PathParameter(
        min_length=1,
        max_length=255,
        pattern=EXTERNAL_ID_PATTERN,
        description="The host's id for this person.",
    ),
]
NEXT_MAX: Final = 500
LOCAL_PATH: Final = r"^/([^/\\\x00-\x1f\x7f][^\\\x00-\x1f\x7f]*)?$"
"""A path on the shop: one leading ``/``, no ``//``, backslash or control character (``safe_next``)."""
_USERS: Final[Table] = User.__table__  # type: ignore[assignment]
UNUSABLE_PASSWORD: Final = "!"
"""Prefix of the password hash of customers created by a host: not an argon2 hash, so no
password ever matches it (app.accounts.service treats an invalid hash as a mismatch)."""

MetadataKey = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
MetadataValue = Annotated[str, msgspec.Meta(max_length=500)]
Metadata = Annotated[dict[MetadataKey, MetadataValue], msgspec.Meta(max_length=50)]


class CustomerIn(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """What a ``PUT`` sets; a field left out (or ``null``) keeps its value.

    ``email`` is needed to create a customer (it is how the shop tells accounts apart);
    ``metadata`` replaces the stored one whole (``{}`` clears it); ``name: ""`` clears the name.
    """

    email: (
        Annotated[str, msgspec.Meta(min_length=3, max_length=320, extra_json_schema={"format": "email"})]
        | None
    ) = None
    name: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    metadata: Metadata | None = None


class BalanceOut(msgspec.Struct):
    """One asset's balance, in whole units (``app.money.credits.AssetBalance``)."""

    available: int
    reserved: int
    held: int
    pending: int
    debt: int
    next_expiry_units: int
    next_expiry_at: int | None


class CustomerOut(msgspec.Struct):
    external_id: str
    email: str
    name: str | None
    metadata: dict[str, str]
    created_at: int
    """Unix seconds."""
    balances: dict[str, BalanceOut]


class SignInLinkIn(msgspec.Struct, forbid_unknown_fields=True):
    next: Annotated[str, msgspec.Meta(min_length=1, max_length=NEXT_MAX, pattern=LOCAL_PATH)] = DEFAULT_NEXT
    """A path on the shop (``/account``), where the customer lands once signed in."""


class SignInLinkOut(msgspec.Struct):
    url: str
    expires_at: int
    """Unix seconds; the link works once, until then."""


class _EmailTaken(Exception):
    """Another customer or account has this email."""


@dataclass(frozen=True, slots=True)
class _Row:
    id: int
    external_id: str
    email: str
    name: str | None
    metadata: str | None
    created_at: datetime


_SELECT_CUSTOMER: Final = select(
    _USERS.c.id,
    _USERS.c.external_id,
    _USERS.c.email,
    _USERS.c.name,
    _USERS.c.customer_metadata,
    _USERS.c.created_at,
).where(_USERS.c.external_id == bindparam("external_id"))
"""Prebuilt (no per-call cache key), so it also runs on a ``CompiledConnection``."""


def _select_customer(conn: SqlConnection, external_id: str) -> _Row | None:
    row = conn.execute(_SELECT_CUSTOMER, {"external_id": external_id}).first()
    return _Row(*row) if row is not None else None


def _fields(data: CustomerIn) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if data.name is not None:
        values["name"] = data.name or None
    if data.metadata is not None:
        values["customer_metadata"] = msgspec.json.encode(data.metadata, order="deterministic").decode()
    return values


def _update(conn: SqlConnection, row: _Row, data: JSONBody[CustomerIn], email: str | None) -> _Row:
    values = _fields(data)
    if email is not None and email != row.email:
        values["email"] = email
    if values:
        try:
            conn.execute(update(_USERS).where(_USERS.c.id == row.id).values(**values))
        except IntegrityError as exc:  # the email's unique key
            raise _EmailTaken from exc
    found = _select_customer(conn, row.external_id)
    assert found is not None
    return found


def put_customer(
    conn: SqlConnection, external_id: str, data: JSONBody[CustomerIn], email: str | None, password_hash: str
) -> tuple[_Row, bool]:
    """Create, link or update the customer; ``(row, created)``. Raises ``_EmailTaken``, ``LookupError``."""
    for _attempt in range(3):
        row = _select_customer(conn, external_id)
        if row is not None:
            return _update(conn, row, data, email), False
        if email is None:
            raise LookupError("email")
        linked = conn.execute(
            update(_USERS)
            .where(and_(_USERS.c.email == email, _USERS.c.external_id.is_(None)))
            .values(external_id=external_id, **_fields(data))
            .returning(_USERS.c.id)
        ).first()
        if linked is None:
            inserted = conn.execute(
                dialect_insert(conn.dialect.name, _USERS)
                .values(
                    email=email,
                    password_hash=password_hash,
                    is_admin=False,
                    external_id=external_id,
                    **_fields(data),
                )
                .on_conflict_do_nothing()
                .returning(_USERS.c.id)
            ).first()
            if inserted is None:
                # The email or the external id is taken: by another customer (409), or by this
                # one or an email account committed meanwhile (found or linked on the next turn).
                if _select_customer(conn, external_id) is None and _email_owner(conn, email) is not None:
                    raise _EmailTaken
                continue
        found = _select_customer(conn, external_id)
        assert found is not None
        return found, True
    raise _EmailTaken


def _email_owner(conn: SqlConnection, email: str) -> str | None:
    """The external id of the account with ``email``, when it has one."""
    row = conn.execute(select(_USERS.c.external_id).where(_USERS.c.email == email)).first()
    return str(row.external_id) if row is not None and row.external_id is not None else None


def _out(conn: SqlConnection, row: _Row) -> CustomerOut:
    balances = {
        asset: BalanceOut(
            available=b.available,
            reserved=b.reserved,
            held=b.held,
            pending=b.pending,
            debt=b.debt,
            next_expiry_units=b.next_expiry_units,
            next_expiry_at=b.next_expiry_at,
        )
        for asset, b in sorted(customer_balances(conn, row.id).items())
    }
    metadata = msgspec.json.decode(row.metadata, type=dict[str, str]) if row.metadata else {}
    return CustomerOut(
        external_id=row.external_id,
        email=row.email,
        name=row.name,
        metadata=metadata,
        created_at=int(row.created_at.timestamp()),
        balances=balances,
    )


def _customer_or_404(conn: SqlConnection, external_id: str) -> _Row:
    row = _select_customer(conn, external_id)
    if row is None:
        raise Problem(404, "customer_not_found", "No customer has this external id.", param="external_id")
    return row


_CUSTOMER_ID: Final = select(_USERS.c.id).where(_USERS.c.external_id == bindparam("external_id"))
"""Prebuilt, so it runs on the money writer's ``CompiledConnection`` too."""


def find_customer_id(conn: SqlConnection, external_id: str) -> int | None:
    """The shop's user id of a host's customer, or ``None`` (for operations run by the money writer)."""
    found = conn.execute(_CUSTOMER_ID, {"external_id": external_id}).scalar()
    return int(found) if found is not None else None


async def customer_user_id(db_session: AsyncSession, external_id: str) -> int:
    """The shop's user id of a host's customer; 404 ``customer_not_found`` (for the money endpoints)."""
    return (await run(db_session, _customer_or_404, external_id)).id


def load_customer(conn: SqlConnection, *, external_id: str) -> CustomerOut:
    """A customer and their balances; 404 ``customer_not_found`` (the route and its hot path)."""
    return _out(conn, _customer_or_404(conn, external_id))


@put(
    "/customers/{external_id:str}",
    opt={"scope": ("spend", "grant")},
    responses=problem_responses(409, created=ResponseSpec(CustomerOut, description="Created or linked")),
    summary="Create or update a customer",
)
async def put_customer_route(
    external_id: ExternalId, data: JSONBody[CustomerIn], db_session: AsyncSession
) -> Response[CustomerOut]:
    """201 when created (or an email account was linked), 200 when it existed; 409 ``email_taken``."""
    email = None
    if data.email is not None:
        email = normalise_email(data.email)
        if email_problem(email):
            raise Problem(422, "invalid_email", "This is not a valid email address.", param="email")
    password_hash = UNUSABLE_PASSWORD + secrets.token_hex(16)

    def change(conn: SqlConnection) -> tuple[CustomerOut, bool]:
        row, created = put_customer(conn, external_id, data, email, password_hash)
        return _out(conn, row), created

    try:
        out, created = await run(db_session, change)
    except _EmailTaken as exc:
        raise Problem(409, "email_taken", "Another customer has this email.", param="email") from exc
    except LookupError as exc:
        raise Problem(
            422, "email_required", "An email is needed to create a customer.", param="email"
        ) from exc
    return Response(out, status_code=201 if created else 200)


@get(
    "/customers/{external_id:str}",
    opt={"scope": "read", READ_ONLY_OPT: True},
    responses=problem_responses(404),
    summary="A customer and their balances",
)
async def get_customer(request: Request[Any, Any, Any], external_id: ExternalId) -> CustomerOut:
    return await api_read(request, partial(load_customer, external_id=external_id))


@post(
    "/customers/{external_id:str}/sign-in-links",
    opt={"scope": ("spend", "grant")},
    status_code=201,
    responses=problem_responses(404, 409),
    summary="A single-use link that signs the customer into the shop",
)
async def create_sign_in_link(
    external_id: ExternalId,
    data: JSONBody[SignInLinkIn],
    db_session: AsyncSession,
    settings: Settings,
    idempotency: Idempotency,
) -> Response[SignInLinkOut]:
    """Valid once, for ``sign_in_link_seconds`` (5 minutes by default); ``next`` must be a local path.

    With an ``Idempotency-Key`` a retried request gets the same link back, not a second one.
    """

    def make(conn: SqlConnection) -> SignInLinkOut:
        row = _customer_or_404(conn, external_id)
        link = create_link(
            conn, user_id=row.id, next_path=data.next, ttl_seconds=settings.sign_in_link_seconds
        )
        return SignInLinkOut(url=settings.base_url + link_path(link.token), expires_at=link.expires_at)

    async def change() -> SignInLinkOut:
        return await run(db_session, make)

    return await idempotency.answer("sign_in_link", (external_id, data), change, status_code=201)


class CustomerItem(msgspec.Struct):
    external_id: str
    email: str
    name: str | None
    created_at: int


def _list(conn: SqlConnection, after: int | None, fetch: int) -> list[tuple[int, CustomerItem]]:
    query = select(
        _USERS.c.id, _USERS.c.external_id, _USERS.c.email, _USERS.c.name, _USERS.c.created_at
    ).where(_USERS.c.external_id.is_not(None))
    if after is not None:
        query = query.where(_USERS.c.id > after)
    rows = conn.execute(query.order_by(_USERS.c.id).limit(fetch)).all()
    return [
        (int(r.id), CustomerItem(r.external_id, r.email, r.name, int(r.created_at.timestamp()))) for r in rows
    ]


@get(
    "/customers",
    opt={"scope": "read", READ_ONLY_OPT: True},
    responses=problem_responses(),
    summary="Customers, oldest first",
)
async def list_customers(page: PageParams, db_session: AsyncSession) -> Page[CustomerItem]:
    rows = await run(db_session, _list, page.after_int(), page.fetch)
    shown = page_of(rows, page, position=lambda row: row[0])
    return Page(data=[item for _, item in shown.data], next_cursor=shown.next_cursor)


ROUTES: list[Any] = [list_customers, put_customer_route, get_customer, create_sign_in_link]
