"""``storefront webhooks``: host endpoints, their delivery log, redelivery, and a standalone deliverer.

The commands only parse, call ``app.host_webhooks.service`` in one transaction and print;
the admin console calls the same functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import click
from sqlalchemy import Connection

from app.db.config import make_engine
from app.host_webhooks.delivery import make_deliverer
from app.host_webhooks.outbox import EVENT_TYPES
from app.host_webhooks.service import (
    DELIVERY_STATUSES,
    AttemptRow,
    DeliveryRow,
    EndpointError,
    add_endpoint,
    delivery_attempts,
    list_deliveries,
    list_endpoints,
    purge_settled,
    redeliver,
    remove_endpoint,
    rotate_secret,
)
from app.settings import get_settings

T = TypeVar("T")


async def _in_transaction(operation: Callable[[Connection], T]) -> T:
    engine = make_engine(get_settings())
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(operation)
    finally:
        await engine.dispose()


def _call(operation: Callable[[Connection], T]) -> T:
    """Run ``operation`` in one committed transaction; an ``EndpointError`` is the operator's message."""
    try:
        return asyncio.run(_in_transaction(operation))
    except EndpointError as error:
        raise click.ClickException(str(error)) from None


def _when(moment: datetime | int | None) -> str:
    if moment is None:
        return "-"
    if isinstance(moment, int):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@click.group(name="webhooks")
def webhooks_group() -> None:
    """Webhooks to host applications (balance changes), their log and their deliverer."""


@webhooks_group.command(name="add", help="Add an endpoint; prints its id and its signing secret (once).")
@click.argument("url")
@click.option(
    "--events",
    required=True,
    help=f"Comma-separated event types ({', '.join(EVENT_TYPES)}) or '*' for all.",
)
def add_command(url: str, events: str) -> None:
    endpoint = _call(lambda conn: add_endpoint(conn, url, events))
    click.echo(f"endpoint {endpoint.id}: {endpoint.url}")
    click.echo(f"events: {endpoint.events}")
    click.echo(f"secret: {endpoint.secret}")
    click.echo("Keep the secret now: it is not shown again. Verify Storefront-Signature with it.")


@webhooks_group.command(name="list", help="List endpoints with their waiting and failed deliveries.")
def list_command() -> None:
    rows = _call(list_endpoints)
    click.echo("id\turl\tevents\tcreated\tdisabled\tpending\tfailed")
    for row in rows:
        click.echo(
            f"{row.id}\t{row.url}\t{row.events}\t{_when(row.created_at)}\t{_when(row.disabled_at)}"
            f"\t{row.pending}\t{row.failed}"
        )
    click.echo(f"{len(rows)} endpoint(s)")


@webhooks_group.command(
    name="remove", help="Stop sending to an endpoint (its waiting deliveries are canceled; the log stays)."
)
@click.argument("endpoint_id", type=int)
@click.option("--purge", is_flag=True, help="Delete it with its deliveries and their log instead.")
def remove_command(endpoint_id: int, purge: bool) -> None:
    if not _call(lambda conn: remove_endpoint(conn, endpoint_id, purge=purge)):
        raise click.ClickException(f"no endpoint {endpoint_id}")
    click.echo(f"endpoint {endpoint_id} {'deleted' if purge else 'removed'}")


@webhooks_group.command(
    name="rotate-secret", help="Give an endpoint a new secret; both sign requests during the overlap."
)
@click.argument("endpoint_id", type=int)
@click.option("--overlap", type=click.IntRange(0), default=86400, show_default=True, help="Seconds.")
def rotate_command(endpoint_id: int, overlap: int) -> None:
    secret = _call(lambda conn: rotate_secret(conn, endpoint_id, now=int(time.time()), overlap=overlap))
    if secret is None:
        raise click.ClickException(f"no endpoint {endpoint_id}")
    click.echo(f"endpoint {endpoint_id} new secret: {secret}")
    click.echo(f"Requests carry a signature for the old secret too for {overlap} s; keep the new one now.")


@webhooks_group.command(name="deliveries", help="The delivery log, newest first.")
@click.option("--endpoint", "endpoint_id", type=int, default=None, help="Only this endpoint's.")
@click.option("--status", type=click.Choice(DELIVERY_STATUSES), default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--attempts", "show_attempts", is_flag=True, help="Show every HTTP attempt under each.")
def deliveries_command(endpoint_id: int | None, status: str | None, limit: int, show_attempts: bool) -> None:
    def read(conn: Connection) -> list[tuple[DeliveryRow, list[AttemptRow]]]:
        rows = list_deliveries(conn, endpoint_id=endpoint_id, status=status, limit=limit)
        return [(row, delivery_attempts(conn, row.id) if show_attempts else []) for row in rows]

    found = _call(read)
    click.echo("id\tevent\ttype\tendpoint\tstatus\tattempts\tlast\tnext/delivered")
    for row, attempts in found:
        last = row.last_error or (str(row.last_status) if row.last_status is not None else "-")
        later = _when(row.delivered_at) if row.status == "delivered" else _when(row.next_attempt_at)
        if row.status in ("failed", "canceled"):
            later = "-"
        click.echo(
            f"{row.id}\t{row.event_id}\t{row.event_type}\t{row.endpoint_id}\t{row.status}"
            f"\t{row.attempts}\t{last}\t{later}"
        )
        for attempt in attempts:
            click.echo(
                f"  {_when(attempt.attempted_at)}\t{attempt.status or '-'}\t{attempt.duration_ms} ms"
                f"\t{attempt.error or ''}"
            )
    click.echo(f"{len(found)} deliver{'y' if len(found) == 1 else 'ies'}")


@webhooks_group.command(name="redeliver", help="Send one delivery again now, with a fresh day of retries.")
@click.argument("delivery_id", type=int)
def redeliver_command(delivery_id: int) -> None:
    row = _call(lambda conn: redeliver(conn, delivery_id, now=int(time.time())))
    if row is None:
        raise click.ClickException(f"no delivery {delivery_id}")
    click.echo(f"delivery {row.id} ({row.event_type} {row.event_id}) will be sent again shortly")


@webhooks_group.command(
    name="purge", help="Delete settled events older than --keep-days with their deliveries and log."
)
@click.option(
    "--keep-days",
    type=click.IntRange(min=1),
    default=None,
    help="Default: STOREFRONT_HOST_WEBHOOKS_KEEP_DAYS (30).",
)
def purge_command(keep_days: int | None) -> None:
    days = keep_days or get_settings().host_webhooks_keep_days
    total = 0
    while done := _call(lambda conn: purge_settled(conn, now=int(time.time()), keep_days=days)):
        total += done
    click.echo(f"{total} event(s) purged (kept the last {days} days and everything still pending)")


@webhooks_group.command(
    name="deliver", help="Run the deliverer in this process (as the app does unless turned off)."
)
@click.option("--once", is_flag=True, help="Fan out and attempt what is due now, then exit.")
def deliver_command(once: bool) -> None:
    settings = get_settings()

    async def main() -> int:
        engine = make_engine(settings)
        deliverer = make_deliverer(settings, engine)
        try:
            if once:
                return await deliverer.run_once()
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError):
                    loop.add_signal_handler(sig, stop.set)
            await deliverer.run(stop)
            return 0
        finally:
            await deliverer.aclose()
            await engine.dispose()

    attempted = asyncio.run(main())
    if once:
        click.echo(f"{attempted} attempt(s)")
