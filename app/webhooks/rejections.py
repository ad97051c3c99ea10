"""Count refused webhook deliveries in the database, per minute and reason (``webhook_rejection``).

Each refusal adds to a tally in memory; the tally is written at most every
``FLUSH_SECONDS`` by one operation of the money writer (an upsert per minute and reason).
Writing each refusal as it came would let a flood of forged deliveries queue work in front
of Stripe's genuine events; this way a flood costs one small write every few seconds. A crash
loses at most that many seconds of counts, which the dashboard's "last hour" can bear.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from functools import lru_cache, partial
from typing import Any, Final

import structlog
from litestar import Litestar
from sqlalchemy import Table, bindparam

from app.db.sql import SqlConnection, dialect_insert
from app.db.writer import get_writer
from app.webhooks.models import WebhookRejection

__all__ = ("FLUSH_SECONDS", "STATE_KEY", "RejectionTally", "write_counts")

log = structlog.get_logger()

STATE_KEY: Final = "webhook_rejections"
FLUSH_SECONDS: Final = 5.0
TABLE: Table = WebhookRejection.__table__  # type: ignore[assignment]


@lru_cache(maxsize=2)
def _add(dialect: str) -> Any:
    """Built once per dialect: the writers' executor compiles each statement object once."""
    insert = dialect_insert(dialect, TABLE).values(
        minute=bindparam("minute"), reason=bindparam("reason"), count=bindparam("count")
    )
    return insert.on_conflict_do_update(
        index_elements=["minute", "reason"], set_={"count": TABLE.c.count + insert.excluded.count}
    )


def write_counts(conn: SqlConnection, counts: dict[tuple[int, str], int]) -> None:
    """Add ``counts`` ((minute, reason) → refusals) to the table, in the caller's transaction."""
    statement = _add(conn.dialect.name)
    for (minute, reason), count in counts.items():
        conn.execute(statement, {"minute": minute, "reason": reason, "count": count})


class RejectionTally:
    """This process's refusals not yet written, and the task writing them."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[int, str]] = Counter()
        self._last_flush = 0.0
        self._task: asyncio.Task[None] | None = None

    def add(self, app: Litestar, reason: str, now: float | None = None) -> None:
        moment = time.time() if now is None else now
        self._counts[(int(moment) // 60 * 60, reason)] += 1
        if (self._task is None or self._task.done()) and moment - self._last_flush >= FLUSH_SECONDS:
            self._last_flush = moment
            self._task = asyncio.create_task(self.flush(app), name="webhook-rejections")

    async def flush(self, app: Litestar) -> None:
        """Write what was counted so far (nothing when nothing was); a failure keeps the counts."""
        counts, self._counts = dict(self._counts), Counter()
        if not counts:
            return
        try:
            await get_writer(app).call(partial(write_counts, counts=counts))
        except Exception:
            log.exception("webhook.rejections_not_written", minutes=len(counts))
            self._counts.update(counts)


def tally_of(app: Litestar) -> RejectionTally:
    """The app's tally, made on first use (no await in between, so made once)."""
    tally: RejectionTally | None = app.state.get(STATE_KEY)
    if tally is None:
        tally = app.state[STATE_KEY] = RejectionTally()
    return tally
