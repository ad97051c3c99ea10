"""``POST /api/v1/keys/verify``: a host's API gateway checks a buyer key and charges the call.

One answer shape for every key (200 with a :class:`~app.buyer_keys.service.Verdict`, valid or
not), so a gateway reads ``valid`` and ``code``. Bad input (unknown fields, a cost that is not an
integer from 0 to 2^53, no key) is a 422 problem document (``invalid_request``), a body that is
not JSON a 400 (``malformed_json``, as app/api answers it); either way nothing is charged.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Annotated, Any, Final, cast

import msgspec
from litestar import MediaType, Request, Response, post
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.status_codes import HTTP_200_OK, HTTP_400_BAD_REQUEST, HTTP_422_UNPROCESSABLE_ENTITY
from litestar.types import Guard
from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.models import ServerKey
from app.buyer_keys.service import MAX_COST, Verdict, hash_key, verify_and_charge
from app.catalogue.reload import CatalogueHolder
from app.db.sql import run

__all__ = ("ROUTES", "VERIFY_GUARDS", "VerifyRequest", "verify_key")

PROBLEM_JSON: Final = "application/problem+json"


class VerifyRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The gateway's question: this buyer key, for a call costing ``cost`` units (default 1)."""

    key: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    cost: Annotated[int, msgspec.Meta(ge=0, le=MAX_COST)] = 1


class Problem(msgspec.Struct, omit_defaults=True):
    """RFC 9457 problem details in app/api's shape (``code`` for programs, ``param`` the field)."""

    type: str
    title: str
    status: int
    code: str
    detail: str = ""
    param: str | None = None


_AT_FIELD: Final = re.compile(r"at `\$\.([A-Za-z_]+)`|unknown field `([^`]+)`")


def _problem(status: int, code: str, detail: str) -> Response[Problem]:
    """Until the route moves under app/api's router, whose ``api_aware`` answers these itself."""
    named = _AT_FIELD.search(detail)
    param = (named.group(1) or named.group(2)) if named else None
    return Response(
        Problem(
            type=f"https://storefront.invalid/problems/{code}",
            title=HTTPStatus(status).phrase,
            status=status,
            code=code,
            detail=detail,
            param=param,
        ),
        status_code=status,
        media_type=PROBLEM_JSON,
    )


# ---- SEAM: server-key authentication (app/api, branch h-api) -----------------------------------
# When app/api lands (branch h-api: ``server_key_guard`` on the ``/api/v1`` router, which reads
# ``opt["scope"]``), the lead either adds ``verify_key`` to ``app.api.routes.V1_HANDLERS`` with
# the path ``/keys/verify`` (and drops it from the factory's list), or puts
# ``app.api.auth.server_key_guard`` in VERIFY_GUARDS; then deletes ``_interim_spend_key`` and its
# one call in ``verify_key``. Until then the interim check below keeps the route closed to anyone
# without a live ``spend`` server key.
VERIFY_GUARDS: list[Guard] = []

SERVER_KEYS = cast(Table, ServerKey.__table__)
SPEND_SCOPE: Final = "spend"


async def _interim_spend_key(request: Request[Any, Any, Any], db: AsyncSession) -> None:
    """``Authorization: Bearer <server key>`` of a live key with the ``spend`` scope, or 401/403.

    Server keys are stored as their SHA-256 (app/api/models.py). ``last_used_at`` is left to
    app/api: writing it on every verify would make one row every gateway call waits on.
    """
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.startswith(("sf_live_", "sf_test_")):
        raise NotAuthorizedException("a server key is required", headers={"WWW-Authenticate": "Bearer"})
    digest = hash_key(token.strip())
    table = SERVER_KEYS
    row = (
        await db.execute(
            select(table.c.scopes).where(table.c.key_hash == digest, table.c.revoked_at.is_(None))
        )
    ).first()
    if row is None:
        raise NotAuthorizedException("unknown or revoked server key", headers={"WWW-Authenticate": "Bearer"})
    if SPEND_SCOPE not in {s.strip() for s in str(row.scopes).split(",")}:
        raise PermissionDeniedException("this server key has no 'spend' scope")


# ---- end of SEAM ------------------------------------------------------------------------------


@post(
    "/api/v1/keys/verify",
    name="api:keys:verify",
    guards=VERIFY_GUARDS,
    opt={"scope": SPEND_SCOPE, "exclude_from_csrf": True},  # app/api's guard reads opt["scope"]
    status_code=HTTP_200_OK,
    media_type=MediaType.JSON,
    summary="Verify a buyer API key and charge one call",
    tags=["keys"],
)
async def verify_key(
    request: Request[Any, Any, Any], db_session: AsyncSession, catalogue: CatalogueHolder
) -> Response[Any]:
    """Valid keys are charged ``cost`` units at once (each verify is a new charge, no retries)."""
    await _interim_spend_key(request, db_session)  # SEAM: delete when app/api's guard is attached
    try:
        body = msgspec.json.decode(await request.body(), type=VerifyRequest)
    except msgspec.ValidationError as error:
        return _problem(HTTP_422_UNPROCESSABLE_ENTITY, "invalid_request", str(error))
    except msgspec.DecodeError as error:  # as app/api answers a body that is not JSON
        return _problem(HTTP_400_BAD_REQUEST, "malformed_json", f"The body is not valid JSON: {error}")
    low = {a.id: a.low_balance for a in catalogue.catalogue.assets if a.low_balance is not None}
    verdict: Verdict = await run(
        db_session, verify_and_charge, key=body.key, cost=body.cost, low_thresholds=low
    )
    return Response(
        verdict, status_code=HTTP_200_OK, media_type=MediaType.JSON, headers={"cache-control": "no-store"}
    )


ROUTES: list[Any] = [verify_key]
"""Mounted by ``app/web/factory.py``."""
