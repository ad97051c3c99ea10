"""The deliverer: fans new host events out to endpoints and POSTs them, signed, at least once.

Each step is its own short transaction and no transaction is open during an HTTP call:

1. **fan out**: events not yet fanned out get one ``host_delivery`` per enabled endpoint
   subscribed to their type (unique (event, endpoint), ``ON CONFLICT DO NOTHING``), and are
   marked fanned out. Only endpoints that exist at that moment get the event: one added
   later is never sent older events.
2. **claim**: due pending deliveries are leased with one conditional UPDATE (PostgreSQL picks
   them with ``FOR UPDATE SKIP LOCKED``; SQLite's write lock serialises claims): their
   ``next_attempt_at`` moves past the HTTP call and ``claim`` gets this attempt's token, so two
   deliverers (replicas, workers) never POST the same attempt at once.
3. **POST** the stored JSON with ``Storefront-Signature`` (see ``signature.py``).
4. **record** the attempt in ``host_delivery_attempt`` and, only if the claim is still ours,
   the outcome: 2xx is ``delivered``; anything else is retried on the :class:`Backoff`
   schedule until its day is over (``failed``).

A crash between 3 and 4 leaves the lease to expire and the delivery is POSTed again: at
least once, never none. Hosts dedupe on ``Storefront-Event-Id``. Order is not guaranteed.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import httpx
import structlog
from litestar import Litestar
from sqlalchemy import Connection, exists, false, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.background import running
from app.db.config import READ_ONLY, make_engine
from app.db.sql import SqlConnection, dialect_insert
from app.db.writer import Writer, background_writer, write_transaction
from app.host_webhooks.service import (
    ATTEMPTS,
    DELIVERIES,
    ENDPOINTS,
    EVENTS,
    KEEP_DAYS,
    RETRY_WINDOW,
    purge_settled,
    subscribed,
)
from app.host_webhooks.signature import HEADER, sign
from app.settings import Settings

__all__ = (
    "Backoff",
    "Claimed",
    "Deliverer",
    "Outcome",
    "claim",
    "deliverer_lifespan",
    "fan_out",
    "record",
)

log = structlog.get_logger(__name__)

USER_AGENT: Final = "storefront-webhooks/1"
ERROR_MAX: Final = 500
RESPONSE_SNIPPET: Final = 200
"""Bytes of a non-2xx answer kept in the log (the rest is not read)."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """When to try again: ``schedule[n-1]`` seconds after the n-th failure (the last one repeats),
    stretched by up to ``jitter`` at random so endpoints that failed together are not retried
    together, for ``window`` seconds after fan-out. Tests inject a short one."""

    schedule: tuple[int, ...] = (10, 30, 120, 600, 1800, 3600, 7200, 14400)
    jitter: float = 0.25
    window: int = RETRY_WINDOW

    def delay(self, failures: int, rand: float) -> int:
        base = self.schedule[min(max(failures, 1), len(self.schedule)) - 1]
        return max(1, round(base * (1 + self.jitter * rand)))


@dataclass(frozen=True, slots=True)
class Claimed:
    """One leased delivery with what its POST needs."""

    delivery_id: int
    token: str
    attempts: int
    give_up_at: int
    event_id: str
    event_type: str
    payload: str
    url: str
    secrets: tuple[str, ...]
    """The endpoint's secret, and the one before it while a rotation overlaps: one ``v1`` each."""
    endpoint_id: int


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def fan_out(conn: SqlConnection, *, now: int, window: int = RETRY_WINDOW, limit: int = 200) -> int:
    """Make the deliveries of up to ``limit`` events not yet fanned out; returns how many events."""
    pending = (
        select(EVENTS.c.id, EVENTS.c.type)
        .where(EVENTS.c.fanned_out == false())
        .order_by(EVENTS.c.created, EVENTS.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        pending = pending.with_for_update(skip_locked=True)
    events = conn.execute(pending).all()
    if not events:
        return 0
    endpoints = conn.execute(
        select(ENDPOINTS.c.id, ENDPOINTS.c.events).where(ENDPOINTS.c.disabled_at.is_(None))
    ).all()
    rows = [
        {
            "event_id": event_id,
            "endpoint_id": endpoint_id,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "give_up_at": now + window,
        }
        for event_id, event_type in events
        for endpoint_id, wanted in endpoints
        if subscribed(wanted, event_type)
    ]
    if rows:
        statement = dialect_insert(conn.dialect.name, DELIVERIES).on_conflict_do_nothing(
            index_elements=["event_id", "endpoint_id"]
        )
        conn.execute(statement, rows)
    conn.execute(update(EVENTS).where(EVENTS.c.id.in_([row[0] for row in events])).values(fanned_out=True))
    return len(events)


def claim(
    conn: SqlConnection,
    *,
    now: int,
    lease: int,
    limit: int,
    per_endpoint: int | None = None,
    busy: Mapping[int, int] | None = None,
) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries of enabled endpoints for ``lease`` seconds.

    Shared out fairly: the slots go round the endpoints with due work one at a time, and no
    endpoint gets more than ``per_endpoint`` in flight counting the ``busy`` ones it already
    has, so one slow or hanging endpoint cannot take every slot while others wait.
    """
    due_where = (
        DELIVERIES.c.status == "pending",
        DELIVERIES.c.next_attempt_at <= now,
        ENDPOINTS.c.disabled_at.is_(None),
    )
    waiting = conn.execute(
        select(DELIVERIES.c.endpoint_id, func.count())
        .join_from(DELIVERIES, ENDPOINTS, DELIVERIES.c.endpoint_id == ENDPOINTS.c.id)
        .where(*due_where)
        .group_by(DELIVERIES.c.endpoint_id)
        .order_by(func.min(DELIVERIES.c.next_attempt_at), DELIVERIES.c.endpoint_id)
    ).all()
    cap = per_endpoint or limit
    room = {endpoint_id: min(count, cap - (busy or {}).get(endpoint_id, 0)) for endpoint_id, count in waiting}
    shares = share_slots(room, limit)
    ids: list[int] = []
    for endpoint_id, share in shares.items():
        due = (
            select(DELIVERIES.c.id)
            .join_from(DELIVERIES, ENDPOINTS, DELIVERIES.c.endpoint_id == ENDPOINTS.c.id)
            .where(*due_where, DELIVERIES.c.endpoint_id == endpoint_id)
            .order_by(DELIVERIES.c.next_attempt_at, DELIVERIES.c.id)
            .limit(share)
        )
        if conn.dialect.name == "postgresql":
            due = due.with_for_update(of=DELIVERIES, skip_locked=True)
        ids.extend(row[0] for row in conn.execute(due).all())
    if not ids:
        return []
    token = secrets.token_hex(12)
    # Conditional: a row someone else leased meanwhile (no longer due) is not taken again.
    leased = conn.execute(
        update(DELIVERIES)
        .where(
            DELIVERIES.c.id.in_(ids),
            DELIVERIES.c.status == "pending",
            DELIVERIES.c.next_attempt_at <= now,
        )
        .values(next_attempt_at=now + lease, claim=token)
        .returning(DELIVERIES.c.id)
    ).all()
    if not leased:
        return []
    rows = conn.execute(
        select(
            DELIVERIES.c.id,
            DELIVERIES.c.attempts,
            DELIVERIES.c.give_up_at,
            EVENTS.c.id,
            EVENTS.c.type,
            EVENTS.c.payload,
            ENDPOINTS.c.url,
            ENDPOINTS.c.secret,
            ENDPOINTS.c.previous_secret,
            ENDPOINTS.c.previous_until,
            DELIVERIES.c.endpoint_id,
        )
        .join_from(DELIVERIES, EVENTS, DELIVERIES.c.event_id == EVENTS.c.id)
        .join(ENDPOINTS, DELIVERIES.c.endpoint_id == ENDPOINTS.c.id)
        .where(DELIVERIES.c.id.in_([row[0] for row in leased]))
        .order_by(DELIVERIES.c.next_attempt_at, DELIVERIES.c.id)
    ).all()
    return [
        Claimed(
            delivery_id=row[0],
            token=token,
            attempts=row[1],
            give_up_at=row[2],
            event_id=row[3],
            event_type=row[4],
            payload=row[5],
            url=row[6],
            secrets=(row[7], row[8]) if row[8] and (row[9] or 0) > now else (row[7],),
            endpoint_id=row[10],
        )
        for row in rows
    ]


def share_slots(room: Mapping[int, int], limit: int) -> dict[int, int]:
    """Deal ``limit`` slots one at a time round the endpoints, each up to its ``room``."""
    shares = dict.fromkeys(room, 0)
    left = limit
    while left > 0:
        dealt = False
        for endpoint_id, most in room.items():
            if left > 0 and shares[endpoint_id] < most:
                shares[endpoint_id] += 1
                left -= 1
                dealt = True
        if not dealt:
            break
    return {endpoint_id: share for endpoint_id, share in shares.items() if share > 0}


def record(
    conn: SqlConnection, claimed: Claimed, outcome: Outcome, *, now: int, backoff: Backoff, rand: float
) -> str | None:
    """Log the attempt and settle the delivery; its new status, or None when the claim was lost
    (redelivered, endpoint removed, or the lease ran out and another deliverer took it)."""
    conn.execute(
        insert(ATTEMPTS).values(
            delivery_id=claimed.delivery_id,
            status=outcome.status,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
        )
    )
    attempts = claimed.attempts + 1
    values: dict[str, Any] = {
        "attempts": attempts,
        "last_status": outcome.status,
        "last_error": outcome.error,
        "claim": None,
    }
    if outcome.delivered:
        values.update(status="delivered", delivered_at=datetime.now(UTC))
    else:
        retry_at = now + backoff.delay(attempts, rand)
        if retry_at > claimed.give_up_at:
            values.update(status="failed")
        else:
            values.update(status="pending", next_attempt_at=retry_at)
    settled = conn.execute(
        update(DELIVERIES)
        .where(DELIVERIES.c.id == claimed.delivery_id, DELIVERIES.c.claim == claimed.token)
        .values(**values)
        .returning(DELIVERIES.c.status)
    ).first()
    return None if settled is None else str(settled[0])


def _has_work(conn: SqlConnection, now: int) -> tuple[bool, bool]:
    """(events to fan out, deliveries due): read before any write so an idle poll takes no lock."""
    unfanned = exists().where(EVENTS.c.fanned_out == false())
    due = exists().where(DELIVERIES.c.status == "pending", DELIVERIES.c.next_attempt_at <= now)
    row = conn.execute(select(unfanned, due)).one()
    return bool(row[0]), bool(row[1])


def _error_text(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return text[:ERROR_MAX]


@dataclass
class Deliverer:
    """Runs the four steps for one process: ``run`` until stopped, or ``run_once`` (the CLI, tests).

    ``clock`` decides what is due (tests move it instead of sleeping); signatures always carry
    the wall clock, which is what hosts check them against.
    """

    engine: AsyncEngine
    timeout: float = 10.0
    poll: float = 1.0
    backoff: Backoff = field(default_factory=Backoff)
    concurrency: int = 8
    clock: Callable[[], float] = time.time
    rand: Callable[[], float] = random.random
    client: httpx.AsyncClient | None = field(default=None, repr=False)
    lease: int = 0
    """Seconds a claim holds a delivery; 0: the timeout plus a minute."""
    keep_days: int = KEEP_DAYS
    purge_every: float = 3600.0
    """Seconds between purges of settled events older than ``keep_days`` (the first at start)."""
    _next_purge: float = field(default=0.0, repr=False)
    _inflight: set[asyncio.Task[None]] = field(default_factory=set, repr=False)
    _inflight_at: Counter[int] = field(default_factory=Counter, repr=False)
    """Attempts in flight per endpoint, so a hanging endpoint is held to its share of slots."""
    writer: Writer | None = None
    """Where the writes go (:func:`app.db.writer.write_transaction`): the money writer on SQLite."""
    _own_client: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if self.client is None:
            self.client = httpx.AsyncClient(
                timeout=self.timeout,
                follow_redirects=False,
                headers={"User-Agent": USER_AGENT},
                limits=httpx.Limits(max_connections=self.concurrency * 2),
            )
            self._own_client = True
        if self.lease <= 0:
            self.lease = int(self.timeout) + 60

    def _now(self) -> int:
        return int(self.clock())

    async def _sync(self, operation: Callable[..., Any], /, **kwargs: Any) -> Any:
        return await write_transaction(self.writer, self.engine, operation, **kwargs)

    async def _probe(self, now: int) -> tuple[bool, bool]:
        token = READ_ONLY.set(True)  # SQLite: a deferred transaction, which never waits for the writer
        try:
            async with self.engine.connect() as conn:
                result: tuple[bool, bool] = await conn.run_sync(_has_work, now)
                await conn.rollback()
                return result
        finally:
            READ_ONLY.reset(token)

    async def fan_out(self) -> int:
        """Fan out every event waiting; returns how many."""
        total = 0
        while True:
            done = int(await self._sync(_fan_out_op, now=self._now(), window=self.backoff.window))
            total += done
            if done == 0:
                return total

    async def purge(self) -> int:
        """Delete settled events past ``keep_days`` with their deliveries and log, in batches."""
        total = 0
        while done := int(await self._sync(purge_settled, now=self._now(), keep_days=self.keep_days)):
            total += done
        if total:
            log.info("host_webhooks.purged", events=total, keep_days=self.keep_days)
        return total

    @property
    def per_endpoint(self) -> int:
        """At most three quarters of the slots for one endpoint: a quarter always stays for the rest."""
        return max(1, self.concurrency * 3 // 4)

    async def claim(self, limit: int, now: int | None = None) -> list[Claimed]:
        found: list[Claimed] = await self._sync(
            claim,
            now=self._now() if now is None else now,
            lease=self.lease,
            limit=limit,
            per_endpoint=self.per_endpoint,
            busy=dict(self._inflight_at),
        )
        return found

    async def attempt(self, claimed: Claimed) -> Outcome:
        """POST one claimed delivery and record what happened (the attempt is logged whatever)."""
        assert self.client is not None
        body = claimed.payload.encode()
        headers = {
            "Content-Type": "application/json",
            HEADER: sign(body, claimed.secrets, int(time.time())),
            "Storefront-Event-Id": claimed.event_id,
            "Storefront-Event-Type": claimed.event_type,
        }
        started = time.perf_counter()
        try:
            async with self.client.stream("POST", claimed.url, content=body, headers=headers) as response:
                status: int | None = response.status_code
                error = None
                if not 200 <= response.status_code < 300:
                    snippet = b""
                    async for chunk in response.aiter_bytes():
                        snippet += chunk
                        if len(snippet) >= RESPONSE_SNIPPET:
                            break
                    text = snippet[:RESPONSE_SNIPPET].decode("utf-8", "replace").strip()
                    error = (f"HTTP {response.status_code}: {text}" if text else f"HTTP {status}")[:ERROR_MAX]
        except httpx.HTTPError as exc:  # connection refused, timeout, bad answer
            status, error = None, _error_text(exc)
        outcome = Outcome(status=status, error=error, duration_ms=int((time.perf_counter() - started) * 1000))
        settled = await self._sync(
            _record_op,
            claimed=claimed,
            outcome=outcome,
            now=self._now(),
            backoff=self.backoff,
            rand=self.rand(),
        )
        log.info(
            "host_webhooks.attempt",
            delivery=claimed.delivery_id,
            event_id=claimed.event_id,
            status=outcome.status,
            error=outcome.error,
            settled=settled,
        )
        return outcome

    async def run_once(self) -> int:
        """Fan out, then attempt every delivery due now (each once); returns how many attempts."""
        await self.fan_out()
        now = self._now()
        attempted = 0
        while batch := await self.claim(self.concurrency, now):
            await asyncio.gather(*(self._guarded(item) for item in batch))
            attempted += len(batch)
        return attempted

    async def _guarded(self, claimed: Claimed) -> None:
        try:
            await self.attempt(claimed)
        except Exception:  # the lease runs out and the delivery is tried again: at least once
            log.exception("host_webhooks.attempt_failed", delivery=claimed.delivery_id)

    async def tick(self) -> bool:
        """One poll: fan out and start as many due deliveries as there is room for.

        True when work is waiting on a slot (every slot full, or an endpoint at its share): the
        next look comes as soon as an attempt finishes rather than a poll later.
        """
        if time.monotonic() >= self._next_purge:
            self._next_purge = time.monotonic() + self.purge_every
            await self.purge()
        unfanned, due = await self._probe(self._now())
        if unfanned:
            await self.fan_out()
            due = True
        room = self.concurrency - len(self._inflight)
        if not due or room <= 0:
            return room <= 0 or (due and bool(self._inflight))
        claimed = await self.claim(room)
        for item in claimed:
            task = asyncio.create_task(self._guarded(item), name=f"host-webhook-{item.delivery_id}")
            self._inflight.add(task)
            self._inflight_at[item.endpoint_id] += 1
            task.add_done_callback(self._settled(item.endpoint_id))
        return len(claimed) == room or bool(self._inflight)

    def _settled(self, endpoint_id: int) -> Callable[[asyncio.Task[None]], None]:
        def done(task: asyncio.Task[None]) -> None:
            self._inflight.discard(task)
            self._inflight_at[endpoint_id] -= 1
            if self._inflight_at[endpoint_id] <= 0:
                del self._inflight_at[endpoint_id]

        return done

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every ``poll`` seconds until ``stop``, sooner while there is a backlog (the next
        look comes when an attempt finishes); database errors are logged and waited out."""
        failures = 0
        stopped = asyncio.create_task(stop.wait(), name="host-webhooks-stop")
        try:
            while not stop.is_set():
                busy = False
                try:
                    busy = await self.tick()
                    failures = 0
                except Exception:
                    failures += 1
                    log.exception("host_webhooks.poll_failed", failures=failures)
                pause = self.poll if not failures else min(60.0, self.poll * 2**failures)
                wake: set[asyncio.Task[Any]] = {stopped, *self._inflight} if busy else {stopped}
                await asyncio.wait(wake, timeout=pause, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        await self.drain()

    async def drain(self, grace: float = 5.0) -> None:
        """Let attempts in flight finish for ``grace`` seconds, then cancel them (they are retried)."""
        if self._inflight:
            _done, left = await asyncio.wait(set(self._inflight), timeout=grace)
            for task in left:
                task.cancel()
            if left:
                await asyncio.wait(left)

    async def aclose(self) -> None:
        await self.drain()
        if self._own_client and self.client is not None:
            await self.client.aclose()


def _fan_out_op(conn: Connection, *, now: int, window: int) -> int:
    return fan_out(conn, now=now, window=window)


def _record_op(
    conn: Connection, *, claimed: Claimed, outcome: Outcome, now: int, backoff: Backoff, rand: float
) -> str | None:
    return record(conn, claimed, outcome, now=now, backoff=backoff, rand=rand)


def make_deliverer(settings: Settings, engine: AsyncEngine, writer: Writer | None = None) -> Deliverer:
    return Deliverer(
        engine,
        timeout=settings.host_webhooks_timeout_seconds,
        poll=settings.host_webhooks_poll_seconds,
        keep_days=settings.host_webhooks_keep_days,
        writer=writer,
    )


@asynccontextmanager
async def deliverer_lifespan(app: Litestar) -> AsyncIterator[None]:
    """The app's background deliverer (``STOREFRONT_HOST_WEBHOOKS_DELIVER``, on by default)."""
    settings: Settings = app.state["settings"]
    engine = make_engine(settings)
    deliverer = make_deliverer(settings, engine, background_writer(app))
    try:
        async with running("storefront-host-webhooks", deliverer.run):
            yield
    finally:
        await deliverer.aclose()
        await engine.dispose()
