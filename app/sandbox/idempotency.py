"""Idempotency keys: a replayed POST answers the first response, for 24 hours, as Stripe does."""

from __future__ import annotations

from .clock import Clock
from .errors import StripeError
from .objects import Obj
from .store import Store

IDEMPOTENCY_TTL = 24 * 3600


class Idempotency:
    """Stored responses keyed by `scope:key`; the entries live on the store so restarts keep them."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def lookup(self, scope: str, key: str, fingerprint: str) -> Obj | None:
        entries = self._store.idempotency
        entry = entries.get(f"{scope}:{key}")
        if entry is None:
            return None
        if entry["created"] + IDEMPOTENCY_TTL < self._clock.now():
            del entries[f"{scope}:{key}"]
            return None
        if entry["fingerprint"] != fingerprint:
            raise StripeError(
                "Keys for idempotent requests can only be used with the same parameters they were first "
                f"used with. Try using a key other than '{key}' if you meant to execute a different request.",
                type="idempotency_error",
            )
        return entry

    def remember(
        self, scope: str, key: str, fingerprint: str, status: int, body: bytes, request_id: str
    ) -> None:
        self._store.idempotency[f"{scope}:{key}"] = {
            "request_id": request_id,
            "fingerprint": fingerprint,
            "status": status,
            "body": body.decode(),
            "created": self._clock.now(),
        }
        self._store.mark_dirty()
