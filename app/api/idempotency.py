"""``Idempotency-Key``: a host may send a change again and get the first answer, never a second change.

Usage guide (a money endpoint in a few lines; the dependency ``idempotency`` is provided on the
API router, and reads the optional ``Idempotency-Key`` header, 1-200 visible ASCII characters)::

    @post("/customers/{external_id:str}/debits", opt={"scope": "spend"}, status_code=201,
          responses=problem_responses(404, 409))
    async def create_debit(
        external_id: str, data: DebitIn, db_session: AsyncSession, idempotency: Idempotency
    ) -> Response[DebitOut]:
        async def change() -> DebitOut:
            user_id = await customer_id(db_session, external_id)        # raises Problem(404, ...)
            try:
                done = await run(db_session, debit, user_id=user_id, asset=data.asset, ...)
            except Insufficient as exc:
                raise Problem(409, "insufficient_balance", "...") from exc
            return DebitOut(...)

        return await idempotency.answer("debit", (external_id, data), change, status_code=201)

How it works, in the request's one transaction:

1. ``INSERT`` a claim row keyed ``<server key id>:<operation>:<Idempotency-Key>`` with the
   SHA-256 of the canonical JSON of ``request`` (``ON CONFLICT DO NOTHING``);
2. if we inserted it, ``change()`` runs and its answer (status and JSON) is written into the
   row; both commit together with the change, or neither does;
3. if the row existed, nothing runs: the stored answer is sent again with
   ``Idempotent-Replayed: true``, or 409 ``idempotency_key_reused`` when ``request`` differs.

A concurrent duplicate waits on the primary key: on PostgreSQL its ``INSERT`` blocks until the
first transaction ends (then it replays, or claims the key itself if the first rolled back);
SQLite lets one writer in at a time (``BEGIN IMMEDIATE``), so the second begins after the first
committed. An error answer (a raised :class:`~app.api.problems.Problem`, any 4xx/5xx) rolls the
transaction back, claim included: nothing changed, so the same key may be tried again.
Without the header ``change()`` simply runs (pass ``required=True`` to insist on one).

Put in ``request`` everything that identifies the change (path parameters and the body); the
key is scoped to the server key and the operation, so two hosts never collide. Rows older than
:data:`RETENTION` are purged now and then on insert (:func:`purge`, also callable from a job).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final, TypeVar, cast

import msgspec
from litestar import Response
from litestar.params import HeaderParameter
from sqlalchemy import Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.keys import KeyRow
from app.api.models import IdempotentRequest
from app.api.problems import Problem
from app.db.sql import SqlConnection, dialect_insert

__all__ = (
    "HEADER",
    "REPLAYED_HEADER",
    "RETENTION",
    "Idempotency",
    "provide_idempotency",
    "purge",
    "request_hash",
)

S = TypeVar("S")
HEADER: Final = "Idempotency-Key"
REPLAYED_HEADER: Final = "Idempotent-Replayed"
RETENTION: Final = 7 * 24 * 3600
PURGE_ONE_IN: Final = 200
"""One claim in this many also deletes the expired rows (an indexed range delete)."""
OPERATION_MAX: Final = 60
_TABLE: Final[Table] = IdempotentRequest.__table__  # type: ignore[assignment]
_JSON: Final = "application/json"


def request_hash(request: Any) -> str:
    """SHA-256 of the canonical JSON of ``request`` (dict keys and sets in a deterministic order)."""
    return hashlib.sha256(msgspec.json.encode(request, order="deterministic")).hexdigest()


def purge(conn: SqlConnection, *, now: int | None = None) -> int:
    """Delete the answers older than :data:`RETENTION`; returns how many."""
    cutoff = (now if now is not None else int(time.time())) - RETENTION
    return int(conn.execute(delete(_TABLE).where(_TABLE.c.created_at < cutoff)).rowcount or 0)


@dataclass(frozen=True, slots=True)
class Idempotency:
    """The request's ``Idempotency-Key`` (or ``None``), bound to its session and server key."""

    db: AsyncSession
    server_key_id: int
    key: str | None

    async def answer(
        self,
        operation: str,
        request: Any,
        change: Callable[[], Awaitable[S]],
        *,
        status_code: int = 200,
        required: bool = False,
    ) -> Response[S]:
        """Run ``change()`` once per key and answer its result (a msgspec Struct) as JSON."""
        if not operation or len(operation) > OPERATION_MAX or ":" in operation:
            raise ValueError(f"operation must be 1-{OPERATION_MAX} characters without ':'")
        if self.key is None:
            if required:
                raise Problem(422, "idempotency_key_required", f"Send an {HEADER} header.", param=HEADER)
            return Response(await change(), status_code=status_code, media_type=_JSON)
        row_key = f"{self.server_key_id}:{operation}:{self.key}"
        digest = request_hash(request)
        now = int(time.time())
        conn = await self.db.connection()
        insert = dialect_insert(conn.dialect.name, _TABLE)
        claim = (
            insert.values(key=row_key, request_hash=digest, status_code=0, response="", created_at=now)
            .on_conflict_do_nothing(index_elements=[_TABLE.c.key])
            .returning(_TABLE.c.key)
        )
        if (await self.db.execute(claim)).first() is None:
            stored = (
                await self.db.execute(
                    select(_TABLE.c.request_hash, _TABLE.c.status_code, _TABLE.c.response).where(
                        _TABLE.c.key == row_key
                    )
                )
            ).first()
            if stored is None:  # purged between the two statements: claim it now
                return await self.answer(operation, request, change, status_code=status_code)
            if stored.request_hash != digest:
                raise Problem(
                    409,
                    "idempotency_key_reused",
                    f"This {HEADER} was used for a different request.",
                    param=HEADER,
                )
            replay: Any = stored.response.encode()
            return Response(
                cast("S", replay),
                status_code=int(stored.status_code),
                media_type=_JSON,
                headers={REPLAYED_HEADER: "true"},
            )
        result = await change()
        encoded = msgspec.json.encode(result)
        await self.db.execute(
            update(_TABLE)
            .where(_TABLE.c.key == row_key)
            .values(status_code=status_code, response=encoded.decode())
        )
        if secrets.randbelow(PURGE_ONE_IN) == 0:
            await conn.run_sync(purge, now=now)
        sent: Any = encoded
        return Response(cast("S", sent), status_code=status_code, media_type=_JSON)


def provide_idempotency(
    db_session: AsyncSession,
    server_key: KeyRow,
    idempotency_key: Annotated[
        str | None,
        HeaderParameter(
            name=HEADER,
            required=False,
            min_length=1,
            max_length=200,
            pattern=r"^[\x21-\x7e]+$",
            description="Any unique string (a UUID): the same key again returns the first answer.",
        ),
    ] = None,
) -> Idempotency:
    """Dependency ``idempotency``."""
    return Idempotency(db=db_session, server_key_id=server_key.id, key=idempotency_key)
