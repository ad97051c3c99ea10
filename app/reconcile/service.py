"""Catch up with Stripe: replay events we never stored, and settle orders nobody told us about.

Webhooks can be lost (our outage, a dropped delivery, a bug fixed later); Stripe keeps its
events for 30 days. One run:

1. takes the ``reconcile`` lease (one runner across replicas; an INSERT ... ON CONFLICT DO
   UPDATE that only succeeds when the lease is free or expired, never check-then-act);
2. lists Stripe's events created since the cursor (all pages), oldest first, and feeds every
   one we have not stored to the same ``process_event`` the webhook uses (``source="reconcile"``);
3. re-checks orders still pending/open/awaiting payment after ``older_than`` seconds by
   retrieving their Checkout Session (credit, mark awaiting, or mark expired);
4. moves the cursor and releases the lease.

Each event and each order is its own transaction (a job's unit of work), so one bad event
cannot undo the others and SQLite's single writer is never held across many Stripe calls.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.checkout.service import apply_session, mark_failed
from app.db.sql import dialect_insert, run
from app.money.events import process_event
from app.money.models import Order, OrderStatus, StripeEvent
from app.reconcile.models import JobLease, ReconcileRun, SyncCursor
from app.stripe_gateway import PaymentProviderError, StripeGateway, as_mapping

log = structlog.get_logger(__name__)

LEASE_NAME: Final = "reconcile"
CURSOR_NAME: Final = "stripe_events"
CURSOR_OVERLAP: Final = 300
"""Seconds re-listed before the cursor each run: events of one second may be listed late."""
EVENT_RETENTION: Final = 30 * 24 * 3600
"""Stripe lists events of the last 30 days; a first run reads all of them."""
DEFAULT_OLDER_THAN: Final = 300
LEASE_TTL: Final = 600


@dataclass
class ReconcileSummary:
    """What one run did, for the CLI and the logs."""

    skipped: bool = False
    since: int | None = None
    events_listed: int = 0
    replayed: list[tuple[str, str, str]] = field(default_factory=list)
    """(event id, type, outcome) of events we had never stored."""
    failed_events: list[tuple[str, str]] = field(default_factory=list)
    orders_checked: int = 0
    orders_fixed: list[tuple[int, str, str]] = field(default_factory=list)
    """(order id, status before, status after)."""
    cursor: int | None = None

    def lines(self) -> list[str]:
        if self.skipped:
            return ["another reconcile run holds the lease; nothing done"]
        out = [f"listed {self.events_listed} Stripe event(s) since {self.since}"]
        out += [f"replayed {eid} {etype}: {outcome}" for eid, etype, outcome in self.replayed]
        out += [f"FAILED {eid}: {error}" for eid, error in self.failed_events]
        out.append(f"checked {self.orders_checked} unsettled order(s)")
        out += [f"order {oid}: {before} -> {after}" for oid, before, after in self.orders_fixed]
        out.append(f"replayed {len(self.replayed)} event(s), fixed {len(self.orders_fixed)} order(s)")
        return out


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


SessionFactory = Callable[[], AsyncSession]


@asynccontextmanager
async def unit_of_work(sessions: SessionFactory) -> AsyncIterator[AsyncSession]:
    """One transaction: committed when the block ends, rolled back if it raises."""
    async with sessions() as db, db.begin():
        yield db


def _insert(db: AsyncSession, table: Any) -> Any:
    return dialect_insert(db.get_bind().dialect.name, table)


async def take_lease(db: AsyncSession, name: str, holder: str, ttl: float) -> bool:
    """Hold ``name`` until now + ``ttl`` if it is free, expired or already ours; True if we hold it."""
    now = datetime.now(UTC)
    table = JobLease.__table__
    stmt = _insert(db, table).values(name=name, holder=holder, expires_at=now + timedelta(seconds=ttl))
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={"holder": stmt.excluded.holder, "expires_at": stmt.excluded.expires_at},
        where=(table.c.expires_at < now) | (table.c.holder == holder),
    ).returning(table.c.holder)
    row = (await db.execute(stmt)).first()
    return row is not None and row[0] == holder


async def release_lease(db: AsyncSession, name: str, holder: str) -> None:
    from sqlalchemy import update

    await db.execute(
        update(JobLease)
        .where(JobLease.name == name, JobLease.holder == holder)
        .values(expires_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )


async def read_cursor(db: AsyncSession) -> int | None:
    row = await db.get(SyncCursor, CURSOR_NAME)
    try:
        return int(row.value) if row is not None else None
    except ValueError:
        return None


async def write_cursor(db: AsyncSession, value: int) -> None:
    table = SyncCursor.__table__
    now = datetime.now(UTC)
    stmt = _insert(db, table).values(name=CURSOR_NAME, value=str(value), updated_at=now)
    await db.execute(
        stmt.on_conflict_do_update(
            index_elements=["name"], set_={"value": stmt.excluded.value, "updated_at": now}
        )
    )


async def _stored_ids(db: AsyncSession, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        found.update(await db.scalars(select(StripeEvent.id).where(StripeEvent.id.in_(chunk))))
    return found


async def replay_events(
    sessions: SessionFactory, gateway: StripeGateway, since: int, summary: ReconcileSummary
) -> int | None:
    """Process every listed event we never stored; returns the new cursor (None: keep the old one)."""
    listed = [event async for event in gateway.list_events(created_gte=since)]
    summary.events_listed = len(listed)
    # Stripe lists newest first; apply oldest first, ties in Stripe's own (reversed) order
    # (sorted() is stable, so reverse the list first).
    listed.reverse()
    ordered = sorted(listed, key=lambda e: int(e.get("created") or 0))
    async with unit_of_work(sessions) as db:
        known = await _stored_ids(db, [str(e["id"]) for e in ordered])
    first_failure: int | None = None
    for event in ordered:
        if event["id"] in known:
            continue
        try:
            async with unit_of_work(sessions) as db:
                outcome = await run(
                    db, process_event, event, source="reconcile", livemode=gateway.settings.stripe_livemode
                )
        except Exception as exc:  # one bad event must not stop the rest
            log.exception("reconcile.event_failed", event_id=event["id"], type=event.get("type"))
            summary.failed_events.append((str(event["id"]), f"{type(exc).__name__}: {exc}"))
            created = int(event.get("created") or 0)
            first_failure = created if first_failure is None else min(first_failure, created)
            continue
        if not outcome.duplicate:
            summary.replayed.append((str(event["id"]), str(event.get("type")), outcome.outcome))
    if first_failure is not None:
        return max(since, first_failure - 1)
    newest = max((int(e.get("created") or 0) for e in ordered), default=None)
    return newest if newest is not None else None


async def recheck_orders(
    sessions: SessionFactory, gateway: StripeGateway, older_than: float, summary: ReconcileSummary
) -> None:
    """Ask Stripe about orders that should have settled by now (their webhook may be lost)."""
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than)
    async with unit_of_work(sessions) as db:
        rows = (
            await db.execute(
                select(Order.id, Order.status, Order.stripe_session_id)
                .where(Order.status.in_(OrderStatus.waiting_values()), Order.created_at <= cutoff)
                .order_by(Order.id)
            )
        ).all()
    for order_id, before, session_id in rows:
        summary.orders_checked += 1
        try:
            session = as_mapping(await gateway.retrieve_session(session_id)) if session_id else None
        except PaymentProviderError as exc:
            log.warning("reconcile.retrieve_failed", order_id=order_id, code=exc.code)
            continue
        async with unit_of_work(sessions) as db:
            order = await db.get(Order, order_id)
            if order is None:
                continue
            if session is None:
                # Committed without a session: nothing can pay it any more.
                await mark_failed(db, order, "no_checkout_session")
            else:
                await apply_session(db, order, session)
            if order.status != before:
                summary.orders_fixed.append((order_id, str(before), str(order.status)))


async def reconcile(
    sessions: SessionFactory,
    gateway: StripeGateway,
    *,
    since: int | None = None,
    older_than: float = DEFAULT_OLDER_THAN,
    holder: str | None = None,
    lease_ttl: float = LEASE_TTL,
) -> ReconcileSummary:
    """One reconciliation run (see the module docstring); ``since`` overrides the stored cursor."""
    holder = holder or holder_id()
    summary = ReconcileSummary()
    started = datetime.now(UTC)
    async with unit_of_work(sessions) as db:
        if not await take_lease(db, LEASE_NAME, holder, lease_ttl):
            summary.skipped = True
            return summary
    try:
        if since is None:
            async with unit_of_work(sessions) as db:
                stored = await read_cursor(db)
            since = stored - CURSOR_OVERLAP if stored is not None else int(time.time()) - EVENT_RETENTION
        summary.since = since
        cursor = await replay_events(sessions, gateway, since, summary)
        await recheck_orders(sessions, gateway, older_than, summary)
        if cursor is not None:
            async with unit_of_work(sessions) as db:
                previous = await read_cursor(db)
                if previous is None or cursor > previous or summary.failed_events:
                    await write_cursor(db, cursor)
            summary.cursor = cursor
    finally:
        async with unit_of_work(sessions) as db:
            await release_lease(db, LEASE_NAME, holder)
    async with unit_of_work(sessions) as db:
        db.add(run_record(summary, started))  # what the admin dashboard shows as the last run
    log.info(
        "reconcile.done",
        listed=summary.events_listed,
        replayed=len(summary.replayed),
        fixed=len(summary.orders_fixed),
        failed=len(summary.failed_events),
    )
    return summary


def run_record(summary: ReconcileSummary, started: datetime) -> ReconcileRun:
    return ReconcileRun(
        started_at=started,
        finished_at=datetime.now(UTC),
        events_listed=summary.events_listed,
        replayed=len(summary.replayed),
        failed=len(summary.failed_events),
        orders_checked=summary.orders_checked,
        orders_fixed=len(summary.orders_fixed),
        summary="\n".join(summary.lines()),
    )


def session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)
