"""The ``storefront`` command: the shop's own commands first, then the Litestar ones that matter here.

Litestar's root group builds the whole app before any command runs (to ask its plugins for
commands), so ``storefront --help`` or ``pricing check`` failed while the live ``pricing.toml``
was broken, and every command printed the app's start-up log line before its output. This root
group lists its commands itself and builds the app only for the commands that need one
(``run``, ``info``, ``routes``, ``schema``); ``database`` gets its configuration from the
settings (``app.db.cli``).

Logging: commands other than the servers log to stderr and only from WARNING up, so their
stdout is only their output (``api-keys create`` prints the key and nothing else).

``storefront run`` / ``serve`` in development note their URL in ``var/dev-server``; a later
command in another shell, with neither ``PORT`` nor ``STOREFRONT_BASE_URL`` set, takes the base
URL from there, so ``reconcile`` (which talks to the sandbox mounted in the running shop) works
against ``PORT=9000 make dev`` without flags.

``StorefrontCLIPlugin`` still adds the same commands to the plain ``litestar`` command.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import rich_click
import structlog
from click import ClickException, Command, Context, Group, get_current_context, option, pass_context
from litestar.cli._utils import LitestarEnv
from litestar.cli.main import litestar_group
from litestar.plugins import CLIPluginProtocol
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from app.accounts.cli import users_group
from app.api.cli import api_keys_group
from app.catalogue.cli import pricing_group
from app.db.cli import database_group
from app.host_webhooks.cli import webhooks_group
from app.ledger_export.cli import ledger_group
from app.reconcile.cli import reconcile_command
from app.sandbox.cli import sandbox as sandbox_command
from app.settings import PROJECT_ROOT, SettingsError, get_settings
from app.web.serve import serve
from app.webhooks.cli import events_group

APP_PATH = "app.web.factory:create_app"
DEV_SERVER_FILE = "dev-server"
"""In the var dir: the base URL of the last development server started by ``run`` or ``serve``."""
SERVERS = frozenset({"run", "serve", "sandbox"})
"""Commands whose output is their log: they log at the configured level."""


@rich_click.command(name="serve", short_help="Serve the production way: several workers, no reload.")
@option("--host", default="127.0.0.1", show_default=True)
@option("--port", default=lambda: int(os.environ.get("PORT", "8000")), type=int, show_default="$PORT or 8000")
@option("--workers", default=2, type=int, show_default=True)
@option("--migrate/--no-migrate", default=True, show_default=True, help="Apply migrations first.")
def serve_command(host: str, port: int, workers: int, migrate: bool) -> None:
    """Serve the shop the production way: several workers, no reload, no debug."""
    _serving_on(port)
    serve(host=host, port=port, workers=workers, migrate=migrate)


def _settings_lines() -> list[tuple[str, str]]:
    settings = get_settings()
    return [
        ("environment", settings.env),
        ("base URL", settings.base_url),
        ("database", _without_password(settings.database_url)),
        ("redis", _without_password(settings.redis_url) or "- (sessions and limits in the database)"),
        ("pricing", str(settings.pricing_path)),
        ("var dir", str(settings.var_dir)),
        ("stripe API", settings.effective_stripe_api_base),
        ("stripe mode", "live" if settings.stripe_livemode else "test"),
        ("sandbox mounted", "yes" if settings.sandbox_mounted else "no"),
        ("metrics token", "set" if settings.metrics_token else "-"),
        ("trusted proxies", ",".join(settings.trusted_proxies) or "-"),
    ]


def _without_password(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True) if url else ""


@rich_click.command(name="settings", short_help="Show the effective settings (no secrets).")
def settings_command() -> None:
    """Show the settings this shop would run with here, after defaults (secrets are never printed)."""
    lines = _settings_lines()
    width = max(len(name) for name, _ in lines)
    for name, value in lines:
        rich_click.echo(f"{name.ljust(width)}  {value}")


_litestar_run = litestar_group.commands["run"]


def _run(**params: Any) -> None:
    _serving_on(int(params["port"]))
    assert _litestar_run.callback is not None
    get_current_context().invoke(_litestar_run.callback, **params)


run_command = type(_litestar_run)(
    name="run",
    params=list(_litestar_run.params),
    callback=_run,
    help="Serve for development with uvicorn (make dev adds --reload); other commands find it.",
    short_help="Serve for development (make dev): one worker, optional --reload.",
)


def _serving_on(port: int) -> None:
    """A server of this process answers on ``port``: its base URL says so, and is noted for other shells."""
    os.environ["PORT"] = str(port)
    get_settings.cache_clear()
    settings = get_settings()
    if not settings.is_production:
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        (settings.var_dir / DEV_SERVER_FILE).write_text(settings.base_url + "\n", encoding="utf-8")


def _find_dev_server() -> None:
    """Without ``PORT`` or ``STOREFRONT_BASE_URL``, a development command talks to the noted server."""
    if os.environ.get("STOREFRONT_ENV", "").strip().lower() == "production":
        return
    if os.environ.get("PORT", "").strip() or os.environ.get("STOREFRONT_BASE_URL", "").strip():
        return
    var_dir = Path(os.environ.get("STOREFRONT_VAR_DIR", "").strip() or PROJECT_ROOT / "var")
    try:
        noted = (var_dir / DEV_SERVER_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return
    if noted.startswith(("http://", "https://")):
        os.environ["STOREFRONT_BASE_URL"] = noted
        get_settings.cache_clear()


def _quiet_logging(serving: bool) -> None:
    """stdout is the command's output: logs go to stderr, and below WARNING only for servers."""
    name = os.environ.get("STOREFRONT_LOG_LEVEL", "INFO").strip().upper() or "INFO"
    level = logging.getLevelName(name)
    level = level if isinstance(level, int) else logging.INFO
    if not serving:
        level = max(level, logging.WARNING)
        # An app built for a command (info, routes, schema) reads its log level from here.
        os.environ["STOREFRONT_LOG_LEVEL"] = logging.getLevelName(level)
        get_settings.cache_clear()
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


class StorefrontGroup(rich_click.RichGroup):
    """Lists commands in the order added (the panels below), not alphabetically.

    Bad settings and a database nobody migrated are the operator's to fix: a message, no traceback.
    """

    def list_commands(self, ctx: Context) -> list[str]:
        return list(self.commands)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        return super().get_command(ctx, ALIASES.get(cmd_name, cmd_name))

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except SettingsError as error:
            raise ClickException(str(error)) from None
        except DBAPIError as error:
            if not _missing_table(error):
                raise
            raise ClickException(
                "the database has no shop tables yet: run `storefront database upgrade --no-prompt` first"
                f" ({error.orig})"
            ) from None


def _missing_table(error: DBAPIError) -> bool:
    """SQLite's ``no such table`` or PostgreSQL's ``undefined_table`` (SQLSTATE 42P01)."""
    text = str(error.orig)
    return "no such table" in text or getattr(error.orig, "sqlstate", None) == "42P01"


ALIASES = {"db": "database"}
"""Accepted, not listed: advanced-alchemy's own group answered to ``db`` too."""
SHOP_COMMANDS = (
    ("database", database_group),
    ("users", users_group),
    ("pricing", pricing_group),
    ("api-keys", api_keys_group),
    ("webhooks", webhooks_group),
    ("events", events_group),
    ("ledger", ledger_group),
    ("reconcile", reconcile_command),
    ("settings", settings_command),
)
SERVING_COMMANDS = (("serve", serve_command), ("run", run_command), ("sandbox", sandbox_command))
LITESTAR_COMMANDS = ("info", "routes", "schema", "version")
"""Litestar's own commands that mean something here; ``sessions`` (server-side session admin) is hidden."""
SHORT_HELP = {
    "database": "Migrate (upgrade) and back up the database.",
    "users": "Make admins and list accounts.",
    "pricing": "Check a pricing file (pricing.toml).",
    "api-keys": "Create, list and revoke host applications' server keys.",
    "webhooks": "Host webhook endpoints, their log and deliverer.",
    "events": "Stripe events whose effect failed, and their replay.",
    "ledger": "Export the ledger as hash-chained CSV, and verify such a file.",
    "reconcile": "Replay missed Stripe events; settle pending orders.",
    "sandbox": "Run the Stripe sandbox on its own.",
    "info": "Litestar: show the app's configuration.",
    "routes": "Litestar: list the app's routes.",
    "schema": "Litestar: export the OpenAPI schema.",
    "version": "Litestar: show Litestar's version.",
}


@rich_click.group(
    name="storefront",
    cls=StorefrontGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@rich_click.command_panel("Shop", commands=[name for name, _ in SHOP_COMMANDS])
@rich_click.command_panel("Serving", commands=[name for name, _ in SERVING_COMMANDS])
@rich_click.command_panel("Litestar", commands=list(LITESTAR_COMMANDS))
@pass_context
def cli(ctx: Context) -> None:
    """storefront: a shop for coin and API-quota packs (Litestar, Stripe Checkout, a ledger)."""
    serving = ctx.invoked_subcommand in SERVERS
    if not serving:
        _find_dev_server()
    _quiet_logging(serving)
    # Litestar's commands load the app from here, only when they run.
    ctx.obj = lambda: LitestarEnv.from_env(APP_PATH)


def _add(group: Group, name: str, command: Command) -> None:
    if name in SHORT_HELP:
        command.short_help = SHORT_HELP[name]
    group.add_command(command, name)


for _name, _command in (*SHOP_COMMANDS, *SERVING_COMMANDS):
    _add(cli, _name, _command)
for _name in LITESTAR_COMMANDS:
    _add(cli, _name, litestar_group.commands[_name])
_hidden = litestar_group.commands["sessions"]
_hidden.hidden = True
cli.add_command(_hidden, "sessions")


class StorefrontCLIPlugin(CLIPluginProtocol):
    """Adds the shop's command groups to the plain ``litestar`` CLI too."""

    def on_cli_init(self, cli: Group) -> None:
        for name, command in SHOP_COMMANDS:
            if name != "database":  # advanced-alchemy's plugin adds its own there
                cli.add_command(command, name)
        cli.add_command(serve_command, "serve")
        cli.add_command(sandbox_command, "sandbox")


def main() -> None:
    """Entry point of the ``storefront`` script."""
    os.environ.setdefault("LITESTAR_APP", APP_PATH)
    sys.exit(cli())
