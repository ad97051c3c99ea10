"""``storefront reconcile``: replay Stripe events we missed and settle forgotten orders, once."""

from __future__ import annotations

import asyncio
from datetime import datetime

import click

from app.db.config import make_engine
from app.reconcile.service import reconcile, session_factory
from app.settings import get_settings
from app.stripe_gateway import StripeGateway


def parse_since(value: str | None) -> int | None:
    """A Unix timestamp or an ISO 8601 date-time (naive means UTC)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            "use a Unix timestamp or an ISO date-time such as 2025-01-31T12:00:00Z"
        ) from None
    if moment.tzinfo is None:
        from datetime import UTC

        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


@click.command(
    name="reconcile", help="Replay missed Stripe events and settle orders Stripe knows more about."
)
@click.option(
    "--since",
    default=None,
    help="Read events created since (Unix time or ISO date-time); default: the cursor.",
)
@click.option(
    "--older-than",
    default=300,
    type=float,
    show_default=True,
    help="Re-check unsettled orders older than (s).",
)
def reconcile_command(since: str | None, older_than: float) -> None:
    settings = get_settings()
    start = parse_since(since)

    async def run() -> list[str]:
        engine = make_engine(settings)
        gateway = StripeGateway(settings)
        try:
            summary = await reconcile(session_factory(engine), gateway, since=start, older_than=older_than)
        finally:
            await gateway.close()
            await engine.dispose()
        if summary.skipped:
            raise click.ClickException("another reconcile run holds the lease; try again later")
        return summary.lines()

    for line in asyncio.run(run()):
        click.echo(line)
