"""``storefront database``: advanced-alchemy's migration commands, and ``backup``.

advanced-alchemy's own ``database`` group finds its configuration through the Litestar app,
so every use would build the whole shop (catalogue included, which fails while ``pricing.toml``
is broken). This group hands its commands the same configuration made from the settings alone.
"""

from __future__ import annotations

from pathlib import Path

import click
import rich_click
from advanced_alchemy.cli import add_migration_commands
from litestar.cli._utils import LitestarGroup

from app.db.backup import BackupError, backup
from app.db.config import make_alchemy_config
from app.settings import get_settings


@click.group(name="database", cls=LitestarGroup)
@click.pass_context
def database_group(ctx: click.Context) -> None:
    """Migrate (upgrade) and back up the shop's database."""
    ctx.obj = {"configs": [make_alchemy_config(get_settings())]}


add_migration_commands(database_group)


@rich_click.command(name="backup")
@click.argument("destination", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace DESTINATION if it exists.")
def backup_command(destination: Path, overwrite: bool) -> None:
    """Copy the live database to DESTINATION (SQLite online backup, or pg_dump)."""
    try:
        made = backup(get_settings().database_url, destination, overwrite=overwrite)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{made.destination}: {made.size:,} bytes ({made.how})")


database_group.add_command(backup_command)
