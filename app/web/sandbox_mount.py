"""Mount the Stripe sandbox at ``/sandbox`` when no real Stripe key is set (``make dev``).

The shop still talks to it over HTTP through the Stripe SDK, exactly as it talks to Stripe.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from litestar import asgi
from litestar.handlers.asgi_handlers import ASGIRouteHandler
from litestar.types import Receive, Scope, Send

from app.sandbox import SandboxConfig, create_sandbox_app
from app.sandbox.app import get_runtime
from app.settings import Settings

Lifespan = Callable[[Any], AbstractAsyncContextManager[None] | AsyncIterator[None]]


def sandbox_mount(settings: Settings) -> tuple[ASGIRouteHandler, Lifespan]:
    """An ASGI mount forwarding ``/sandbox/...`` to the sandbox app, whose webhooks come back to us.

    Litestar does not run a mounted app's lifespan, so the sandbox's (its delivery worker
    and clock) is returned for the shop's own lifespan list.
    """
    sandbox = create_sandbox_app(
        SandboxConfig(
            api_key=settings.sandbox_key or None,
            webhook_endpoints=[(settings.base_url + "/webhooks/stripe", settings.stripe_webhook_secrets[0])]
            if settings.stripe_webhook_secrets
            else [],
            public_url=settings.base_url + "/sandbox",
            business_name=settings.shop_name,
            state_file=settings.var_dir / "sandbox-state.json" if settings.env == "development" else None,
        )
    )

    @asgi("/sandbox", is_mount=True, copy_scope=True, include_in_schema=False)
    async def mounted(scope: Scope, receive: Receive, send: Send) -> None:
        await sandbox(scope, receive, send)

    return mounted, get_runtime(sandbox).lifespan
