"""``Idempotency-Key``: a host may send a change again and get the first answer, never a second change.

Usage guide. The dependency ``idempotency: Idempotency`` is provided on the API router; it
reads the optional ``Idempotency-Key`` header (1-200 visible ASCII characters, documented in
the OpenAPI) and knows the caller's server key. A money endpoint uses one of two forms.

**Through the money writer** (``app.db.writer``: the change is a synchronous operation on a
connection, committed in the writer's batch)::

    @post("/customers/{external_id:str}/debits", opt={"scope": "spend"}, status_code=201,
          responses=problem_responses(404, 409))
    async def create_debit(
        request: Request, external_id: ExternalId, data: JSONBody[DebitIn], idempotency: Idempotency
    ) -> Response[DebitOut]:
        def change(conn: SqlConnection) -> tuple[int, DebitOut | ProblemDetails]:
            user_id = find_customer_id(conn, external_id)   # app.api.customers
            if user_id is None:
                return 404, problem_details(404, "customer_not_found", "...", param="external_id")
            try:
                done = debit(conn, user_id=user_id, asset=data.asset, units=data.units, key=...)
            except Insufficient as exc:
                return 409, problem_details(409, "insufficient_balance", "...")  # a result
            return 201, DebitOut(...)

        op = idempotency.operation("debit", (external_id, data), change)
        return respond(await get_writer(request.app).call(op))

**In the request's own transaction** (``db_session``; the change is async)::

        async def change() -> DebitOut:
            user_id = await customer_user_id(db_session, external_id)   # 404 customer_not_found
            ...                                              # raise Problem(...) to refuse
            return DebitOut(...)

        return await idempotency.answer("debit", (external_id, data), change, status_code=201)

Either way, in one transaction:

1. ``INSERT`` a claim row keyed ``<server key id>:<operation>:<Idempotency-Key>`` holding the
   SHA-256 of the canonical JSON of ``request`` (``ON CONFLICT DO NOTHING``);
2. if we inserted it, the change runs and its answer (status and JSON) is written into the
   row: both commit together with the change, or neither does;
3. if the row existed, nothing runs: the stored answer is sent again with
   ``Idempotent-Replayed: true``, or 409 ``idempotency_key_reused`` when ``request`` differs.

A concurrent duplicate waits on the primary key: on PostgreSQL its ``INSERT`` blocks until the
first transaction ends (then it replays, or claims the key itself if the first rolled back);
SQLite lets one writer in at a time (``BEGIN IMMEDIATE``; the money writer is one thread), and
two duplicates in one writer batch run one after the other in its transaction.
A refusal the writer form *returns* (a 4xx answer) is stored and replayed like a success, as
Stripe does; a raised :class:`~app.api.problems.Problem` (the ``answer`` form) rolls the request
back, claim included: nothing changed, so the same key may be tried again.
Without the header the change simply runs (``required=True`` insists on one: 422).

Put in ``request`` everything that identifies the change (path parameters and the body); keys
are scoped to the server key and the operation, so two hosts never collide. Rows older than
:data:`RETENTION` are purged now and then on insert (:func:`purge`, also callable from a job).
Statements are prebuilt with bind parameters, as ``app.db.compiled`` requires.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache, partial
from typing import Annotated, Any, Final, TypeVar, cast

import msgspec
from litestar import Response
from litestar.params import HeaderParameter
from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.keys import KeyRow
from app.api.models import IdempotentRequest
from app.api.problems import PROBLEM_MEDIA_TYPE, Problem, problem_details
from app.db.sql import SqlConnection, dialect_insert, run

__all__ = (
    "HEADER",
    "KEY_PATTERN",
    "REPLAYED_HEADER",
    "RETENTION",
    "Answer",
    "Idempotency",
    "answer_headers",
    "idempotent",
    "once",
    "provide_idempotency",
    "purge",
    "request_hash",
    "respond",
)

S = TypeVar("S")
HEADER: Final = "Idempotency-Key"
REPLAYED_HEADER: Final = "Idempotent-Replayed"
RETENTION: Final = 7 * 24 * 3600
PURGE_ONE_IN: Final = 200
"""One claim in this many also deletes the expired rows (an indexed range delete)."""
OPERATION_MAX: Final = 60
KEY_MAX: Final = 200
KEY_PATTERN: Final = r"^[\x21-\x7e]+$"
"""1-200 visible ASCII characters."""
_TABLE: Final[Table] = IdempotentRequest.__table__  # type: ignore[assignment]
_JSON: Final = "application/json"

Change = Callable[[SqlConnection], tuple[int, Any]]
"""A synchronous change: ``(status code, msgspec-encodable body)``; 4xx bodies are problems."""


@cache
def _statements(dialect: str) -> dict[str, Any]:
    c = _TABLE.c
    claim = (
        dialect_insert(dialect, _TABLE)
        .values(
            key=bindparam("row_key"),
            request_hash=bindparam("digest"),
            status_code=0,
            response="",
            created_at=bindparam("now"),
        )
        .on_conflict_do_nothing(index_elements=[c.key])
        .returning(c.key)
    )
    return {
        "claim": claim,
        "stored": select(c.request_hash, c.status_code, c.response).where(c.key == bindparam("row_key")),
        "answer": update(_TABLE)
        .where(c.key == bindparam("row_key"))
        .values(status_code=bindparam("status"), response=bindparam("body")),
        "purge": delete(_TABLE).where(c.created_at < bindparam("cutoff")),
    }


def request_hash(request: Any) -> str:
    """SHA-256 of the canonical JSON of ``request`` (dict keys and sets in a deterministic order)."""
    return hashlib.sha256(msgspec.json.encode(request, order="deterministic")).hexdigest()


def purge(conn: SqlConnection, *, now: int | None = None) -> None:
    """Delete the answers older than :data:`RETENTION`."""
    cutoff = (now if now is not None else int(time.time())) - RETENTION
    conn.execute(_statements(conn.dialect.name)["purge"], {"cutoff": cutoff})


@dataclass(frozen=True, slots=True)
class Answer:
    """What to send: the first answer, or its replay."""

    status_code: int
    body: bytes
    replayed: bool = False


def _check(operation: str) -> None:
    if not operation or len(operation) > OPERATION_MAX or ":" in operation:
        raise ValueError(f"operation must be 1-{OPERATION_MAX} characters without ':'")


def _reused() -> Answer:
    problem = problem_details(
        409, "idempotency_key_reused", f"This {HEADER} was used for a different request.", param=HEADER
    )
    return Answer(409, msgspec.json.encode(problem))


def once(
    conn: SqlConnection,
    *,
    server_key_id: int,
    operation: str,
    key: str,
    request: Any,
    change: Change,
    now: int | None = None,
) -> Answer:
    """Claim ``key`` and run ``change(conn)``, or give the stored answer (see the module's guide)."""
    _check(operation)
    row_key = f"{server_key_id}:{operation}:{key}"
    now = now if now is not None else int(time.time())
    stored = _claim(conn, row_key, request_hash(request), now)
    if stored is not None:
        return stored
    status, result = change(conn)
    encoded = msgspec.json.encode(result)
    _store(conn, row_key, status, encoded.decode(), now)
    return Answer(status, encoded)


def answer_headers(answer: Answer) -> tuple[str, dict[str, str]]:
    """The media type and headers of an :class:`Answer` (JSON, or problem details for an error)."""
    headers = {REPLAYED_HEADER: "true"} if answer.replayed else {}
    return (PROBLEM_MEDIA_TYPE if answer.status_code >= 400 else _JSON), headers


def respond(answer: Answer) -> Response[Any]:
    """The HTTP response for an :class:`Answer`."""
    media, headers = answer_headers(answer)
    return Response(answer.body, status_code=answer.status_code, media_type=media, headers=headers)


@dataclass(frozen=True, slots=True)
class Idempotency:
    """The request's ``Idempotency-Key`` (or ``None``), bound to its session and server key."""

    db: AsyncSession
    server_key_id: int
    key: str | None

    def operation(
        self, operation: str, request: Any, change: Change, *, required: bool = False
    ) -> Callable[[SqlConnection], Answer]:
        """A synchronous operation for the money writer (or ``run``): the change, at most once per key."""
        _check(operation)
        if self.key is None and required:
            raise Problem(422, "idempotency_key_required", f"Send an {HEADER} header.", param=HEADER)
        return idempotent(self.key, self.server_key_id, operation, request, change)

    async def answer(
        self,
        operation: str,
        request: Any,
        change: Callable[[], Awaitable[S]],
        *,
        status_code: int = 200,
        required: bool = False,
    ) -> Response[S]:
        """Run the async ``change()`` in the request's transaction once per key; answer its Struct as JSON.

        The claim and the stored answer are written on the request's session around ``change()``
        (``app.db.sql.run``), so they commit with what ``change()`` wrote, or roll back with it.
        """
        _check(operation)
        if self.key is None:
            if required:
                raise Problem(422, "idempotency_key_required", f"Send an {HEADER} header.", param=HEADER)
            return Response(await change(), status_code=status_code, media_type=_JSON)
        row_key = f"{self.server_key_id}:{operation}:{self.key}"
        digest = request_hash(request)
        now = int(time.time())
        claimed = await run(self.db, _claim, row_key, digest, now)
        if claimed is not None:
            return cast("Response[S]", respond(claimed))
        result = await change()
        encoded = msgspec.json.encode(result)
        await run(self.db, _store, row_key, status_code, encoded.decode(), now)
        sent: Any = encoded
        return Response(cast("S", sent), status_code=status_code, media_type=_JSON)


def idempotent(
    key: str | None, server_key_id: int, operation: str, request: Any, change: Change
) -> Callable[[SqlConnection], Answer]:
    """The writer operation running ``change`` at most once per ``key`` (see the module's guide).

    A partial of module-level functions: it pickles when ``change`` does, so the money writer may
    run it in its own process (app/db/writer_process.py).
    """
    _check(operation)
    return partial(
        _run_once, key=key, server_key_id=server_key_id, operation=operation, request=request, change=change
    )


def _run_once(
    conn: SqlConnection, *, key: str | None, server_key_id: int, operation: str, request: Any, change: Change
) -> Answer:
    if key is None:
        status, result = change(conn)
        return Answer(status, msgspec.json.encode(result))
    return once(
        conn, server_key_id=server_key_id, operation=operation, key=key, request=request, change=change
    )


def _claim(conn: SqlConnection, row_key: str, digest: str, now: int) -> Answer | None:
    """``None`` when we claimed the key, else what to answer (the replay, or the reuse conflict)."""
    statements = _statements(conn.dialect.name)
    if conn.execute(statements["claim"], {"row_key": row_key, "digest": digest, "now": now}).first():
        return None
    stored = conn.execute(statements["stored"], {"row_key": row_key}).first()
    if stored is None:  # purged meanwhile
        return _claim(conn, row_key, digest, now)
    stored_hash, status, body = stored
    if stored_hash != digest:
        return _reused()
    return Answer(int(status), str(body).encode(), replayed=True)


def _store(conn: SqlConnection, row_key: str, status: int, body: str, now: int) -> None:
    conn.execute(
        _statements(conn.dialect.name)["answer"], {"row_key": row_key, "status": status, "body": body}
    )
    if secrets.randbelow(PURGE_ONE_IN) == 0:
        purge(conn, now=now)


def provide_idempotency(
    db_session: AsyncSession,
    server_key: KeyRow,
    idempotency_key: Annotated[
        str | None,
        HeaderParameter(
            name=HEADER,
            required=False,
            min_length=1,
            max_length=KEY_MAX,
            pattern=KEY_PATTERN,
            description="Any unique string (a UUID): the same key again returns the first answer.",
        ),
    ] = None,
) -> Idempotency:
    """Dependency ``idempotency``."""
    return Idempotency(db=db_session, server_key_id=server_key.id, key=idempotency_key)
