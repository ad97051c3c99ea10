"""The ``storefront`` command: Litestar's CLI with the shop's own commands added by a plugin.

``storefront run`` / ``storefront database upgrade`` come from Litestar and advanced-alchemy;
``pricing``, ``users``, ``sandbox``, ``reconcile``, ``events``, ``webhooks``, ``serve``,
``api-keys`` and ``ledger`` are ours.
"""

from __future__ import annotations

import os
import sys

import click
import structlog
from click import Group
from litestar.cli.main import litestar_group
from litestar.plugins import CLIPluginProtocol

from app.accounts.cli import users_group
from app.api.cli import api_keys_group
from app.catalogue.cli import pricing_group
from app.host_webhooks.cli import webhooks_group
from app.ledger_export.cli import ledger_group
from app.reconcile.cli import reconcile_command
from app.sandbox.cli import sandbox as sandbox_command
from app.web.serve import serve
from app.webhooks.cli import events_group


class StorefrontCLIPlugin(CLIPluginProtocol):
    """Adds the shop's command groups to the Litestar CLI."""

    def on_cli_init(self, cli: Group) -> None:
        cli.add_command(pricing_group, "pricing")
        cli.add_command(users_group, "users")
        cli.add_command(sandbox_command, "sandbox")
        cli.add_command(reconcile_command, "reconcile")
        cli.add_command(events_group, "events")
        cli.add_command(webhooks_group, "webhooks")
        cli.add_command(serve_command, "serve")
        cli.add_command(api_keys_group, "api-keys")
        cli.add_command(ledger_group, "ledger")


@click.command(name="serve", help="Serve the shop the production way: several workers, no reload, no debug.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port", default=lambda: int(os.environ.get("PORT", "8000")), type=int, show_default="$PORT or 8000"
)
@click.option("--workers", default=2, type=int, show_default=True)
@click.option("--migrate/--no-migrate", default=True, show_default=True, help="Apply migrations first.")
def serve_command(host: str, port: int, workers: int, migrate: bool) -> None:
    serve(host=host, port=port, workers=workers, migrate=migrate)


def main() -> None:
    """Entry point of the ``storefront`` script.

    Log lines go to stderr from the start (the app's own logging does too, once it is made):
    stdout is the commands' output, e.g. ``storefront ledger export > file.csv``.
    """
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    os.environ.setdefault("LITESTAR_APP", "app.web.factory:create_app")
    sys.exit(litestar_group())
