"""The sandbox clock: wall time plus an offset tests can advance, and the work that falls due.

Checkout expiry and bank-debit settlement register here, so moving the clock (or the background
ticker) makes everything that is now due happen at once, in registration order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from .errors import invalid
from .store import Store

DueHandler = Callable[[int], None]


class Clock:
    """Sandbox time; the offset lives on the store so a restart keeps an advanced clock."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._due: list[DueHandler] = []

    def now(self) -> int:
        return int(time.time() + self._store.clock_offset)

    def on_due(self, handler: DueHandler) -> None:
        """Run `handler(now)` on every tick; it does whatever has fallen due by `now`."""
        self._due.append(handler)

    def tick(self) -> None:
        now = self.now()
        for handler in self._due:
            handler(now)

    def advance(self, seconds: float) -> int:
        """Move the sandbox clock forward; due expirations and debits happen at once."""
        if seconds < 0:
            raise invalid("The sandbox clock only moves forward.", param="seconds")
        self._store.clock_offset += seconds
        self._store.mark_dirty()
        self.tick()
        return self.now()

    async def run(self) -> None:
        """Expire sessions and settle bank debits as the (possibly advanced) clock passes them."""
        while True:
            await asyncio.sleep(self._store.config.tick_interval)
            self.tick()
