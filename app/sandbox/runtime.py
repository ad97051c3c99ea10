"""Ties state, delivery and background tasks together; shared by the API, pages and control routes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from .config import SandboxConfig
from .delivery import DeliveryWorker
from .errors import StripeError
from .state import SandboxState
from .versions import KNOWN_VERSIONS

_encoder = msgspec.json.Encoder()
_TEST_KEYS = ("sk_test_", "rk_test_")


class SandboxRuntime:
    """One running sandbox: its state, webhook worker and background tasks."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.state = SandboxState(config)
        self.delivery = DeliveryWorker(self.state)
        self._tasks: list[asyncio.Task[None]] = []
        self.started = False

    async def start(self) -> None:
        """Start background work; also called lazily on first request when mounted without lifespan."""
        if self.started:
            return
        self.started = True
        await self.delivery.start()
        self._tasks.append(asyncio.create_task(self.state.run_ticker(), name="sandbox-ticker"))
        if self.config.state_file:
            self._tasks.append(asyncio.create_task(self.state.run_saver(), name="sandbox-saver"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.delivery.stop()
        self.state.save_now()
        self.started = False

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Any = None) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    async def flush(self, max_wait: float | None = 30.0) -> bool:
        """Wait until every queued webhook delivery (including retries) has settled."""
        await self.start()
        return await self.delivery.wait_idle(max_wait)

    # ------------------------------------------------------------------------------ auth

    def authenticate(self, headers: Any) -> str:
        """Return the secret key or raise Stripe's 401."""
        raw = headers.get("authorization")
        key: str | None = None
        if raw:
            scheme, _, value = raw.partition(" ")
            if scheme.lower() == "bearer":
                key = value.strip()
            elif scheme.lower() == "basic":
                try:
                    key = base64.b64decode(value).decode().split(":", 1)[0]
                except (ValueError, UnicodeDecodeError):
                    key = None
        if not key:
            raise StripeError(
                "You did not provide an API key. You need to provide your API key in the Authorization "
                "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
                "https://stripe.com/docs/api#authentication for details, or we can help at "
                "https://support.stripe.com/.",
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="Stripe"'},
            )
        if key.startswith(("pk_test_", "pk_live_")):
            raise StripeError(
                "This API call cannot be made with a publishable API key. Please use a secret API key. "
                "You can find a list of your API keys at https://dashboard.stripe.com/account/apikeys.",
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="Stripe"'},
            )
        pinned = self.config.api_key
        # Restricted keys (`rk_test_`) act with a secret key's rights: the sandbox keeps no permissions.
        valid = key == pinned if pinned else key.startswith(_TEST_KEYS) and len(key) > len("sk_test_")
        if not valid:
            masked = key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if len(key) > 12 else key
            raise StripeError(
                f"Invalid API Key provided: {masked}",
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="Stripe"'},
            )
        version = headers.get("stripe-version")
        if version is not None and version not in KNOWN_VERSIONS:
            raise StripeError(f"Invalid Stripe API version: {version}")
        return key


def encode(obj: Any) -> bytes:
    return _encoder.encode(obj)
