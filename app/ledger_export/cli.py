"""``storefront ledger export`` (CSV with a hash chain, to stdout) and ``storefront ledger verify``."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from app.db.config import make_engine
from app.ledger_export.service import Tally, export_csv, verify
from app.settings import get_settings

__all__ = ("ledger_group",)


@click.group(name="ledger")
def ledger_group() -> None:
    """The ledger as a verifiable CSV file."""


async def _export(since: datetime | None) -> None:
    engine = make_engine(get_settings())
    try:
        tally = Tally()
        async with engine.connect() as conn:
            async for chunk in export_csv(conn, since=since, tally=tally):
                sys.stdout.write(chunk)
        sys.stdout.flush()
        click.echo(f"exported {tally.rows} entries, last hash {tally.last_hash}", err=True)
    finally:
        await engine.dispose()


@ledger_group.command(name="export", help="Write every ledger entry as CSV with a hash chain to stdout.")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    default=None,
    help="Only entries created at or after this UTC date (or date and time).",
)
def export_command(since: datetime | None) -> None:
    asyncio.run(_export(since.replace(tzinfo=UTC) if since is not None else None))


@ledger_group.command(name="verify", help="Check an exported file: intact, or the first row that differs.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--last-hash",
    default=None,
    help="The last hash the export printed: also catches rows cut off the end or appended.",
)
def verify_command(file: Path, last_hash: str | None) -> None:
    with file.open(newline="", encoding="utf-8") as lines:
        verdict = verify(lines, last_hash)
    if verdict.intact:
        click.echo(f"{file}: intact, {verdict.rows} entries, last hash {verdict.last_hash}")
        return
    entry = f" (entry {verdict.entry_id})" if verdict.entry_id else ""
    click.echo(f"{file}: NOT intact: row {verdict.row}{entry} differs: {verdict.problem}", err=True)
    click.echo(f"the {verdict.rows} rows before it are intact", err=True)
    raise SystemExit(1)
