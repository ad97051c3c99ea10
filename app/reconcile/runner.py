"""Periodic reconciliation inside the server process; the lease keeps it to one replica at a time."""

from __future__ import annotations

import asyncio
import contextlib
import random

import structlog
from litestar import Litestar

from app.db.config import make_engine
from app.reconcile.service import holder_id, reconcile, session_factory
from app.settings import Settings
from app.stripe_gateway import StripeGateway

log = structlog.get_logger(__name__)


async def _loop(settings: Settings, gateway: StripeGateway) -> None:
    engine = make_engine(settings)
    sessions = session_factory(engine)
    holder = holder_id()
    interval = settings.reconcile_interval_seconds
    try:
        while True:
            # Jitter spreads replicas started together; the lease decides who runs anyway.
            await asyncio.sleep(interval * random.uniform(0.8, 1.2))
            try:
                await reconcile(sessions, gateway, holder=holder, lease_ttl=max(600, interval * 5))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reconcile.run_failed")
    finally:
        with contextlib.suppress(Exception):
            await engine.dispose()


async def start_periodic_reconcile(app: Litestar) -> asyncio.Task[None]:
    """Start the background task (the factory cancels it at shutdown); interval 0 is never passed here."""
    settings: Settings = app.state["settings"]
    gateway: StripeGateway = app.state["stripe"]
    return asyncio.create_task(_loop(settings, gateway), name="storefront-reconcile")
