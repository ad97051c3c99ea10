"""``storefront events``: the Stripe events whose effect failed on their data, and their replay.

Such an event was acknowledged (Stripe will not send it again) and kept as ``failed:
<error>`` (``app.money.events``), so an operator looks at it, fixes what was wrong (code or
data) and replays it through the same handlers; a replay is idempotent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

import click
from sqlalchemy import Connection

from app.db.config import make_engine
from app.money.event_store import failed_events
from app.money.events import replay_event
from app.settings import get_settings

T = TypeVar("T")


async def _in_transaction(operation: Callable[[Connection], T]) -> T:
    engine = make_engine(get_settings())
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(operation)
    finally:
        await engine.dispose()


@click.group(name="events")
def events_group() -> None:
    """Stripe events kept as failed, for an operator."""


@click.command(name="failed", help="List the stored Stripe events whose effect failed on their data.")
@click.option("--limit", default=100, type=int, show_default=True)
def failed_command(limit: int) -> None:
    rows = asyncio.run(_in_transaction(lambda conn: failed_events(conn, limit)))
    for event_id, event_type, created, outcome in rows:
        click.echo(f"{event_id}\t{event_type}\t{created}\t{outcome}")
    click.echo(f"{len(rows)} failed event(s)")


@click.command(name="replay", help="Run one stored Stripe event through its handler again.")
@click.argument("event_id")
def replay_command(event_id: str) -> None:
    livemode = get_settings().stripe_livemode
    result = asyncio.run(_in_transaction(lambda conn: replay_event(conn, event_id, livemode=livemode)))
    if result is None:
        raise click.ClickException(f"no stored event {event_id}")
    click.echo(f"{result.event_id} {result.type}: {result.outcome}")
    if result.failed:
        raise SystemExit(1)


events_group.add_command(failed_command)
events_group.add_command(replay_command)
