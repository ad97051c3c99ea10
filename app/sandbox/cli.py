"""`sandbox` click command: run the Stripe sandbox standalone with uvicorn."""

from __future__ import annotations

import os
from pathlib import Path

import click

from .app import create_sandbox_app
from .config import SandboxConfig


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=12111, show_default=True, type=int)
@click.option("--webhook", "webhooks", multiple=True, help="Webhook endpoint URL (repeatable).")
@click.option("--webhook-secret", default=None, help="whsec_ secret used to sign events for every --webhook.")
@click.option("--state-file", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--public-url", default=None, help="Externally visible base URL (default http://HOST:PORT).")
@click.option(
    "--api-key",
    default=None,
    envvar="STOREFRONT_SANDBOX_KEY",
    help="Accept only this secret key (default: any sk_test_...).",
)
def sandbox(
    host: str,
    port: int,
    webhooks: tuple[str, ...],
    webhook_secret: str | None,
    state_file: Path | None,
    public_url: str | None,
    api_key: str | None,
) -> None:
    """Run the Stripe sandbox: the API under /v1, hosted Checkout under /c/pay, controls under /_sandbox."""
    import uvicorn

    secret = webhook_secret or os.environ.get("STOREFRONT_SANDBOX_WEBHOOK_SECRET") or "whsec_sandbox"
    if not secret.startswith("whsec_"):
        raise click.BadParameter("must start with whsec_", param_hint="--webhook-secret")
    config = SandboxConfig(
        api_key=api_key,
        webhook_endpoints=[(url, secret) for url in webhooks],
        public_url=public_url or f"http://{host}:{port}",
        state_file=state_file,
    )
    click.echo(f"Stripe sandbox on http://{host}:{port} (simulation: no money moves)")
    uvicorn.run(create_sandbox_app(config), host=host, port=port, log_level="warning", workers=1)


if __name__ == "__main__":  # pragma: no cover
    sandbox()
