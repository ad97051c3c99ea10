"""Events: one Stripe event per state change, its live view, and webhook delivery bookkeeping.

Every mutation ends in `Emitter.emit`, which records the event, marks it pending for each
endpoint and tells the listeners (the delivery worker) its id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import stripe

from . import objects
from .clock import Clock
from .ids import new_id
from .objects import Obj
from .store import Store, snapshot

API_VERSION: str = stripe.api_version


@dataclass
class RequestContext:
    """Who caused a mutation; becomes the event's `request` field."""

    request_id: str | None = None
    idempotency_key: str | None = None


HOSTED = RequestContext()


class Emitter:
    """Records events and their delivery status; endpoints may be added while running."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self.endpoints: list[tuple[str, str]] = list(store.config.webhook_endpoints)
        self._listeners: list[Callable[[str], None]] = []

    def on_event(self, listener: Callable[[str], None]) -> None:
        """Register a callback receiving each new event id (the delivery worker uses it)."""
        self._listeners.append(listener)

    def emit(self, event_type: str, obj: Obj, ctx: RequestContext, previous: Obj | None = None) -> Obj:
        data: Obj = {"object": snapshot(obj)}
        if previous is not None:
            data["previous_attributes"] = previous
        event = objects.event(
            event_id=new_id("evt_"),
            created=self._clock.now(),
            api_version=API_VERSION,
            event_type=event_type,
            data=data,
            pending_webhooks=len(self.endpoints),
            request_id=ctx.request_id,
            idempotency_key=ctx.idempotency_key,
        )
        store = self._store
        store.events.add(event)
        store.delivery_status[event["id"]] = dict.fromkeys((url for url, _ in self.endpoints), "pending")
        for listener in self._listeners:
            listener(event["id"])
        store.mark_dirty()
        return event

    def event_view(self, event: Obj) -> Obj:
        """An event with its live `pending_webhooks` count."""
        statuses = self._store.delivery_status.get(event["id"], {})
        pending = sum(1 for s in statuses.values() if s != "succeeded")
        if pending == event["pending_webhooks"]:
            return event
        return {**event, "pending_webhooks": pending}

    def delivery_succeeded(self, event_id: str) -> bool:
        return all(s == "succeeded" for s in self._store.delivery_status.get(event_id, {}).values())

    def settle_delivery(self, event_id: str, url: str, status: str) -> None:
        """Record an endpoint's final answer ("succeeded" or "failed") for an event, and persist it."""
        self._store.delivery_status.setdefault(event_id, {})[url] = status
        self._store.mark_dirty()
