"""Expire lots and holds in the background, so balances and host webhooks follow the clock.

Writes meet expiries themselves (a debit refused by a passed ``next_expiry`` sweeps that
balance first), so this loop only makes sure an untouched balance is swept too and that
``hold.expired`` reaches hosts promptly. Every replica may run it: each balance is swept under
its row lock, and a second sweeper finds nothing left to do.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.config import READ_ONLY
from app.db.writer import Writer, background_writer, write_transaction
from app.money.credits import anything_due, sweep
from app.settings import Settings

log = structlog.get_logger(__name__)

BATCH = 200
"""Balances per transaction: short transactions keep SQLite's writer free for the webhook."""


async def sweep_once(engine: AsyncEngine, writer: Writer | None = None) -> int:
    """Sweep until nothing is due; how many balances were swept.

    It asks first in a read-only transaction (SQLite: DEFERRED, no write lock), so an idle
    sweep every few seconds never queues behind, nor holds up, the webhook's writer. The sweeps
    themselves go through ``writer`` when given (the money writer on SQLite:
    :func:`app.db.writer.write_transaction`).
    """
    token = READ_ONLY.set(True)
    try:
        async with engine.connect() as conn:
            due = await conn.run_sync(lambda sync: anything_due(sync))
    finally:
        READ_ONLY.reset(token)
    if not due:
        return 0
    total = 0
    while True:
        swept = await write_transaction(writer, engine, sweep, limit=BATCH)
        total += swept
        if swept < BATCH:
            return total


async def _loop(engine: AsyncEngine, writer: Writer | None, interval: int) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            swept = await sweep_once(engine, writer)
            if swept:
                log.info("expiry.swept", balances=swept)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("expiry.sweep_failed")


def start_expiry_sweeper(app: Litestar, engine: AsyncEngine) -> asyncio.Task[None] | None:
    """Start the loop (the factory cancels it at shutdown); None when the interval is 0."""
    settings: Settings = app.state["settings"]
    if settings.expiry_interval_seconds <= 0:
        return None
    return asyncio.create_task(
        _loop(engine, background_writer(app), settings.expiry_interval_seconds), name="storefront-expiry"
    )


async def stop(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
