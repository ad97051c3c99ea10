"""Where verified webhook events are processed and committed before the 2xx.

Each event is one operation of the process's money writer (``app.db.writer``: group commit,
one COMMIT and fsync per batch, the answer only after it): ``app.money.events.process_event``
on the writer's connection. A 2xx therefore always means "committed durably".
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from litestar import Litestar

from app.db.writer import Operation, get_writer
from app.money.events import ProcessOutcome, process_event
from app.settings import Settings

__all__ = ("event_operation", "submit_event")


def event_operation(
    event: Mapping[str, Any], payload: str, *, livemode: bool = False
) -> Operation[ProcessOutcome]:
    """The writer's operation for one verified event."""
    return partial(process_event, event=event, payload=payload, livemode=livemode)


async def submit_event(app: Litestar, event: Mapping[str, Any], payload: str) -> ProcessOutcome:
    """Store one verified event with its effect; returns after the commit (raises on failure)."""
    settings: Settings = app.state["settings"]
    return await get_writer(app).call(event_operation(event, payload, livemode=settings.stripe_livemode))
