"""``storefront api-keys``: create, list and revoke the host applications' server keys.

Runs against the configured database with its own engine and one transaction per command. A key
is ``sf_live_…`` when the shop's Stripe key is live (``Settings.stripe_livemode``), else
``sf_test_…``, so a host can tell a staging shop's key from production's at a glance.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import click
from sqlalchemy import Connection

from app.api.keys import (
    AmbiguousPrefix,
    BadScopes,
    KeyRow,
    NewKey,
    create_key,
    list_keys,
    parse_scopes,
    revoke_key,
)
from app.db.config import make_engine
from app.settings import get_settings

T = TypeVar("T")


def _in_transaction(operation: Callable[[Connection], T]) -> T:
    async def go() -> T:
        engine = make_engine(get_settings())
        try:
            async with engine.begin() as conn:
                return await conn.run_sync(operation)
        finally:
            await engine.dispose()

    return asyncio.run(go())


@click.group(name="api-keys")
def api_keys_group() -> None:
    """Manage the server keys of host applications (the /api/v1 JSON API)."""


@api_keys_group.command(name="create")
@click.argument("name")
@click.option(
    "--scopes",
    default="read",
    show_default=True,
    help="Comma-separated: read (customers, balances), spend (debits, holds), grant (promotional credit).",
)
def create_command(name: str, scopes: str) -> None:
    """Make a key called NAME; it is printed once and only its SHA-256 is kept."""
    name = name.strip()
    if not name or len(name) > 200:
        raise click.BadParameter("1-200 characters", param_hint="NAME")
    try:
        parsed = parse_scopes(scopes)
    except BadScopes as exc:
        raise click.BadParameter(str(exc), param_hint="--scopes") from exc
    live = get_settings().stripe_livemode

    def make(conn: Connection) -> NewKey:
        return create_key(conn, name=name, scopes=parsed, live=live)

    made = _in_transaction(make)
    click.echo(made.key)
    click.echo(
        f"Created key {made.id} ({made.prefix}…) with scopes {','.join(made.scopes)}. "
        "Store it now: it is not shown again.",
        err=True,
    )


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


def _table(rows: list[KeyRow]) -> list[list[str]]:
    head = ["ID", "NAME", "PREFIX", "SCOPES", "CREATED", "LAST USED", "REVOKED"]
    body = [
        [
            str(r.id),
            r.name,
            r.prefix,
            ",".join(r.scopes),
            _when(r.created_at),
            _when(r.last_used_at),
            _when(r.revoked_at),
        ]
        for r in rows
    ]
    return [head, *body]


@api_keys_group.command(name="list")
def list_command() -> None:
    """Every key: name, prefix, scopes, created, last used (to the minute) and revoked."""
    rows = _in_transaction(list_keys)
    if not rows:
        click.echo("No server keys yet: storefront api-keys create NAME --scopes read,spend")
        return
    table = _table(rows)
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@api_keys_group.command(name="revoke")
@click.argument("prefix_or_id")
def revoke_command(prefix_or_id: str) -> None:
    """Revoke the key with this id or prefix (``sf_test_ab12``); it stops working at once."""

    def revoke(conn: Connection) -> list[KeyRow]:
        return revoke_key(conn, prefix_or_id.strip())

    try:
        revoked: list[Any] = _in_transaction(revoke)
    except AmbiguousPrefix as exc:
        raise click.ClickException(str(exc)) from exc
    if not revoked:
        raise click.ClickException(f"no live key has the id or prefix {prefix_or_id!r}")
    for row in revoked:
        click.echo(f"Revoked key {row.id} ({row.name}, {row.prefix}…).")
