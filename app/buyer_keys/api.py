"""``POST /api/v1/keys/verify``: a host's API gateway checks a buyer key and charges the call.

One answer shape for every key (200 with a :class:`~app.buyer_keys.service.Verdict`, valid or
not), so a gateway reads ``valid`` and ``code``. Bad input (unknown fields, a cost that is not an
integer from 0 to 2^53, no key) is a 422 problem, a body that is not JSON a 400; either way
nothing is charged. The check and the charge are one operation of the money writer
(``app.db.writer``: group commit), answered after its COMMIT. Mounted on the host API's router
(``app.api.routes``), which authenticates the server key (scope ``spend``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated, Any

import msgspec
from litestar import MediaType, Request, Response, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from app.api.body import strict_body
from app.api.problems import problem_responses
from app.buyer_keys.service import MAX_COST, Verdict, verify_and_charge
from app.catalogue.reload import CatalogueHolder
from app.db.sql import SqlConnection
from app.db.writer import get_writer

__all__ = ("ROUTES", "VerifyRequest", "verify_key", "verify_operation")


class VerifyRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The gateway's question: this buyer key, for a call costing ``cost`` units (default 1)."""

    key: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    cost: Annotated[int, msgspec.Meta(ge=0, le=MAX_COST)] = 1


def verify_operation(body: VerifyRequest, catalogue: CatalogueHolder) -> Callable[[SqlConnection], Verdict]:
    """The writer operation checking and charging one call (it pickles: a partial)."""
    low = {a.id: a.low_balance for a in catalogue.catalogue.assets if a.low_balance is not None}
    return partial(verify_and_charge, key=body.key, cost=body.cost, low_thresholds=low)


@post(
    "/keys/verify",
    name="api:keys:verify",
    opt={"scope": "spend"},
    status_code=HTTP_200_OK,
    media_type=MediaType.JSON,
    responses=problem_responses(),
    summary="Verify a buyer API key and charge one call",
)
async def verify_key(
    request: Request[Any, Any, Any], data: JSONBody[VerifyRequest], catalogue: CatalogueHolder
) -> Response[Verdict]:
    """Valid keys are charged ``cost`` units at once (each verify is a new charge: no retries)."""
    body = await strict_body(request, VerifyRequest)
    verdict = await get_writer(request.app).call(verify_operation(body, catalogue))
    return Response(
        verdict, status_code=HTTP_200_OK, media_type=MediaType.JSON, headers={"cache-control": "no-store"}
    )


ROUTES: list[Any] = [verify_key]
"""Listed in ``app.api.routes.V1_HANDLERS``."""
