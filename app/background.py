"""A worker loop that lives as long as the app: the host webhook deliverer and the mail worker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

__all__ = ("running",)

STOP_GRACE = 10.0
"""Seconds a loop gets to finish once told to stop (its claims are leases: what it drops is retried)."""


@asynccontextmanager
async def running(
    name: str, run: Callable[[asyncio.Event], Coroutine[Any, Any, None]]
) -> AsyncIterator[None]:
    """Run ``run(stop)`` as a task while the block runs; then set ``stop`` and wait a while for it."""
    stop = asyncio.Event()
    task = asyncio.create_task(run(stop), name=name)
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=STOP_GRACE)
