"""The mail worker: claims due outbox rows, renders them in the buyer's language, sends, records.

Like the host webhook deliverer, each step is its own short transaction and none is open
during the SMTP conversation:

1. **claim** due ``pending`` rows with one conditional UPDATE (PostgreSQL picks them with
   ``FOR UPDATE SKIP LOCKED``; SQLite's write lock serialises claims): ``next_attempt_at``
   moves past the send (a lease) and ``claim`` gets this worker's token, so two replicas
   never send the same attempt at once;
2. **compose** from the row, the account (its email and locale now) and, for a receipt, the
   order and the charge's ``receipt_url`` from Stripe;
3. **send** through the transport (SMTP or files);
4. **record** the outcome only if the claim is still ours: ``sent`` (a secret's data is
   emptied), or another try after the :class:`~app.host_webhooks.delivery.Backoff` delay,
   ``failed`` after :data:`MAX_ATTEMPTS`.

A crash between 3 and 4 lets the lease run out and the message is sent again: at least once.
A slow server never does: each attempt is bounded and only started while it can end inside
its lease (:meth:`MailWorker.run_once`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from email.message import EmailMessage
from typing import Any, Final, cast

import msgspec
import structlog
from litestar import Litestar
from sqlalchemy import Connection, Table, case, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app import i18n
from app.accounts.models import User
from app.background import running
from app.catalogue.reload import CatalogueHolder
from app.db.config import READ_ONLY, make_engine
from app.db.sql import SqlConnection
from app.db.writer import Writer, background_writer, write_transaction
from app.host_webhooks.delivery import Backoff
from app.mail.messages import Composer, Content, OrderFacts, Recipient
from app.mail.outbox import OUTBOX
from app.mail.transport import Transport, TransportError, make_transport
from app.money.models import Order
from app.settings import Settings
from app.stripe_gateway import PaymentProviderError, StripeGateway, as_mapping

__all__ = ("MAX_ATTEMPTS", "Claimed", "MailWorker", "claim", "mail_lifespan", "record")

log = structlog.get_logger(__name__)

MAX_ATTEMPTS: Final = 8
"""Tries before a message is given up (``failed``); about a day with the default backoff."""
BACKOFF: Final = Backoff(schedule=(10, 60, 300, 1800, 3600, 7200, 14400))
LEASE: Final = 120
"""Seconds a claim holds a row: longer than an SMTP conversation with its 30 s timeout."""
ATTEMPT_SECONDS: Final = 45.0
"""The most one message may take (the receipt URL from Stripe, then SMTP), so that one started
early enough in its lease (:meth:`MailWorker.run_once`) ends before another replica may claim it."""
ERROR_MAX: Final = 500
USERS = cast(Table, User.__table__)
ORDERS = cast(Table, Order.__table__)


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    token: str
    kind: str
    data: dict[str, Any]
    attempts: int
    to: Recipient


def claim(conn: SqlConnection, *, now: int, limit: int, lease: int = LEASE) -> list[Claimed]:
    """Lease up to ``limit`` due messages; a row another worker leased meanwhile is not taken."""
    due = (
        select(OUTBOX.c.id)
        .where(OUTBOX.c.status == "pending", OUTBOX.c.next_attempt_at <= now)
        .order_by(OUTBOX.c.next_attempt_at, OUTBOX.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = [row[0] for row in conn.execute(due).all()]
    if not ids:
        return []
    token = secrets.token_hex(12)
    leased = conn.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id.in_(ids), OUTBOX.c.status == "pending", OUTBOX.c.next_attempt_at <= now)
        .values(next_attempt_at=now + lease, claim=token)
        .returning(OUTBOX.c.id)
    ).all()
    if not leased:
        return []
    rows = conn.execute(
        select(OUTBOX.c.id, OUTBOX.c.kind, OUTBOX.c.data, OUTBOX.c.attempts, USERS.c.email, USERS.c.locale)
        .join_from(OUTBOX, USERS, OUTBOX.c.user_id == USERS.c.id)
        .where(OUTBOX.c.id.in_([row[0] for row in leased]))
        .order_by(OUTBOX.c.id)
    ).all()
    return [
        Claimed(
            id=row[0],
            token=token,
            kind=row[1],
            data=msgspec.json.decode(row[2]),
            attempts=row[3],
            to=Recipient(email=row[4], locale=row[5] if row[5] in i18n.SUPPORTED else i18n.DEFAULT),
        )
        for row in rows
    ]


def record(
    conn: SqlConnection,
    claimed: Claimed,
    *,
    error: str | None,
    now: int,
    backoff: Backoff = BACKOFF,
    rand: float = 0.0,
) -> str | None:
    """Write the attempt's outcome if the claim is still ours; the new status, or None if it was not."""
    attempts = claimed.attempts + 1
    values: dict[str, Any] = {"attempts": attempts, "claim": None}
    if error is None:
        status = "sent"
        values.update(
            status=status,
            sent_at=now,
            last_error=None,
            data=case((OUTBOX.c.secret, "{}"), else_=OUTBOX.c.data),
        )
    else:
        status = "failed" if attempts >= MAX_ATTEMPTS else "pending"
        values.update(
            status=status, last_error=error[:ERROR_MAX], next_attempt_at=now + backoff.delay(attempts, rand)
        )
    done = conn.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id == claimed.id, OUTBOX.c.claim == claimed.token)
        .values(**values)
        .returning(OUTBOX.c.id)
    ).first()
    return status if done is not None else None


def _order_facts(conn: Connection, order_id: int) -> OrderFacts | None:
    row = conn.execute(
        select(
            ORDERS.c.id,
            ORDERS.c.pack_id,
            ORDERS.c.pack_name,
            ORDERS.c.asset,
            ORDERS.c.units,
            ORDERS.c.bonus,
            ORDERS.c.amount,
            ORDERS.c.currency,
            ORDERS.c.stripe_session_id,
            ORDERS.c.amount_discount,
            ORDERS.c.amount_tax,
            ORDERS.c.amount_paid,
        ).where(ORDERS.c.id == order_id)
    ).first()
    if row is None:
        return None
    # The session id stands in for the receipt URL until that is known.
    discount, tax, paid = row[9:12]
    return OrderFacts(
        *row[:8], receipt_url=row[8], amount_discount=discount, amount_tax=tax, amount_paid=paid
    )


class MailWorker:
    """Sends what the outbox holds; every replica may run one (claims are atomic)."""

    def __init__(
        self,
        engine: AsyncEngine,
        transport: Transport,
        composer: Composer,
        *,
        gateway: StripeGateway | None = None,
        reset_minutes: int = 60,
        batch: int = 20,
        poll: float = 1.0,
        backoff: Backoff = BACKOFF,
        lease: int = LEASE,
        attempt_seconds: float = ATTEMPT_SECONDS,
        writer: Writer | None = None,
    ) -> None:
        self.engine = engine
        self.writer = writer
        """Where the writes go (:func:`app.db.writer.write_transaction`): the money writer on SQLite."""
        self.transport = transport
        self.composer = composer
        self.gateway = gateway
        self.reset_minutes = reset_minutes
        self.batch = batch
        self.poll = poll
        self.backoff = backoff
        self.lease = lease
        self.attempt_seconds = attempt_seconds

    async def claim(self) -> list[Claimed]:
        claimed: list[Claimed] = await write_transaction(
            self.writer, self.engine, claim, now=int(time.time()), limit=self.batch, lease=self.lease
        )
        return claimed

    async def _receipt_url(self, session_id: str | None) -> str | None:
        """The charge's ``receipt_url`` from Stripe; a receipt goes without it rather than not at all."""
        if self.gateway is None or not session_id:
            return None
        try:
            session = as_mapping(
                await self.gateway.retrieve_session(session_id, expand=("payment_intent.latest_charge",))
            )
        except PaymentProviderError as exc:
            log.warning("mail.receipt_url_unavailable", session_id=session_id, code=exc.code)
            return None
        intent = session.get("payment_intent")
        charge = as_mapping(intent).get("latest_charge") if isinstance(intent, Mapping) else None
        url = as_mapping(charge).get("receipt_url") if isinstance(charge, Mapping) else None
        return url if isinstance(url, str) and url.startswith(("https://", "http://")) else None

    async def _content(self, item: Claimed) -> Content:
        data, locale = item.data, item.to.locale
        if item.kind in ("receipt", "refund"):
            async with self.engine.connect() as conn:
                order = await conn.run_sync(lambda sync: _order_facts(sync, int(data["order_id"])))
            if order is None:
                raise LookupError(f"order {data['order_id']} is gone")
            # The row carries the Checkout Session id where the receipt URL goes: swap it.
            url = await self._receipt_url(order.receipt_url) if item.kind == "receipt" else None
            order = replace(order, receipt_url=url)
            if item.kind == "receipt":
                return self.composer.receipt(order, locale)
            return self.composer.refund(
                order, locale, refunded=int(data["refunded"]), units_taken=int(data["units_taken"])
            )
        if item.kind == "password_reset":
            return self.composer.password_reset(item.to.email, str(data["token"]), self.reset_minutes)
        if item.kind == "verify_email":
            return self.composer.verify_email(item.to.email, str(data["token"]))
        raise LookupError(f"unknown mail kind {item.kind!r}")

    async def compose(self, item: Claimed) -> EmailMessage:
        """The message in the account's language (the worker's own task: the locale is its own)."""
        i18n.set_locale(item.to.locale)
        content = await self._content(item)
        return self.composer.build(content, item.to)

    async def attempt(self, item: Claimed) -> str | None:
        error: str | None = None
        try:
            async with asyncio.timeout(self.attempt_seconds):
                message = await self.compose(item)
                await self.transport.send(message, message_id=item.id)
        except TimeoutError:
            error = f"TimeoutError: no answer within {self.attempt_seconds:g} s"
            log.warning("mail.send_failed", message_id=item.id, kind=item.kind, error=error)
        except TransportError as exc:
            error = str(exc) or type(exc).__name__
            log.warning("mail.send_failed", message_id=item.id, kind=item.kind, error=error)
        except Exception as exc:  # a message we cannot compose counts its attempts too: no endless retry
            error = f"{type(exc).__name__}: {exc}"
            log.exception("mail.compose_failed", message_id=item.id, kind=item.kind)
        status = await write_transaction(
            self.writer,
            self.engine,
            record,
            claimed=item,
            error=error,
            now=int(time.time()),
            backoff=self.backoff,
            rand=random.random(),
        )
        if status == "sent":
            log.info("mail.sent", message_id=item.id, kind=item.kind)
        return status

    async def run_once(self, stop: asyncio.Event | None = None) -> int:
        """Claim and send one batch; how many messages were attempted.

        The batch goes one message at a time, so a slow server could make the last ones outlast
        their lease, and another replica would send them too. A message is only started while it
        can end (``attempt_seconds``) with a quarter of the lease to spare; the rest are handed
        back at once for the next look. So are they when ``stop`` is set (the app is stopping: a
        batch of receipts, each asking Stripe for its link, held shutdown for its whole grace).
        """
        last_start = time.monotonic() + self.lease * 0.75 - self.attempt_seconds
        claimed = await self.claim()
        for n, item in enumerate(claimed):
            if time.monotonic() > last_start or (stop is not None and stop.is_set()):
                await self._release(claimed[n:])
                return n
            await self.attempt(item)
        return len(claimed)

    async def _release(self, items: list[Claimed]) -> None:
        """End these claims unattempted (due now, no attempt counted), if they are still ours."""
        await write_transaction(self.writer, self.engine, _release, items=items, now=int(time.time()))

    async def _anything_due(self) -> bool:
        """An idle look in a read-only transaction (SQLite: no write lock for the webhook to wait on)."""
        token = READ_ONLY.set(True)
        try:
            async with self.engine.connect() as conn:
                found = await conn.execute(
                    select(OUTBOX.c.id)
                    .where(OUTBOX.c.status == "pending", OUTBOX.c.next_attempt_at <= int(time.time()))
                    .limit(1)
                )
                return found.first() is not None
        finally:
            READ_ONLY.reset(token)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop``; a full batch means more may be due, so look again at once."""
        failures = 0
        while not stop.is_set():
            busy = False
            try:
                if await self._anything_due():
                    busy = await self.run_once(stop) >= self.batch
                failures = 0
            except Exception:
                failures += 1
                log.exception("mail.poll_failed", failures=failures)
            if busy:
                continue
            pause = self.poll if not failures else min(60.0, self.poll * 2**failures)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=pause)


def _release(conn: Connection, *, items: list[Claimed], now: int) -> None:
    """End these claims unattempted (due now, no attempt counted), if they are still ours."""
    for item in items:
        conn.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id == item.id, OUTBOX.c.claim == item.token)
            .values(next_attempt_at=now, claim=None)
        )


def make_worker(settings: Settings, engine: AsyncEngine, app: Litestar | None = None) -> MailWorker:
    holder: CatalogueHolder | None = app.state.get("catalogue") if app is not None else None
    gateway: StripeGateway | None = app.state.get("stripe") if app is not None else None
    composer = Composer(
        base_url=settings.base_url,
        sender=settings.mail_from,
        catalogue=(lambda: holder.catalogue) if holder is not None else None,
    )
    return MailWorker(
        engine,
        make_transport(settings.smtp_url, settings.var_dir),
        composer,
        gateway=gateway,
        reset_minutes=settings.password_reset_seconds // 60,
        poll=settings.mail_poll_seconds,
        writer=background_writer(app) if app is not None else None,
    )


@asynccontextmanager
async def mail_lifespan(app: Litestar) -> AsyncIterator[None]:
    """The app's mail worker (``STOREFRONT_MAIL_DELIVER``, on by default)."""
    settings: Settings = app.state["settings"]
    if not settings.smtp_url:
        log.info("mail.to_files", directory=str(settings.var_dir / "mail"))
    engine = make_engine(settings)
    worker = make_worker(settings, engine, app)
    try:
        async with running("storefront-mail", worker.run):
            yield
    finally:
        await engine.dispose()
