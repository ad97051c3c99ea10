"""Which installation of the shop this database is: a random id its migration made once.

Stripe keeps idempotency keys per account, so two databases on one account (staging beside
production, a restored copy) would otherwise send the same ``order-1-...`` key and get an
``IdempotencyError`` for their first orders. The id is read once per process, not per request.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
from sqlalchemy import Integer, String, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import NaturalKeyBase

log = structlog.get_logger(__name__)

ROW_ID = 1
"""The table holds this one row."""


class Installation(NaturalKeyBase):
    """The one row naming this database's installation (made by migration 0004)."""

    __tablename__ = "installation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    installation_id: Mapped[str] = mapped_column(String(32))


class InstallationId:
    """The id, read from the database on first need (start-up preloads it) and then kept."""

    def __init__(self, engine: Callable[[], AsyncEngine]) -> None:
        self._engine = engine
        self._value: str | None = None

    async def get(self) -> str:
        if self._value is None:
            async with self._engine().connect() as conn:
                found = await conn.scalar(
                    select(Installation.installation_id).where(Installation.id == ROW_ID)
                )
            if not found:
                raise RuntimeError("this database has no installation id: run `storefront database upgrade`")
            self._value = str(found)
        return self._value

    async def preload(self) -> None:
        """At start-up, so no request pays for it; a database down then is retried on first use."""
        try:
            await self.get()
        except (SQLAlchemyError, OSError, RuntimeError) as exc:
            log.warning("installation.unreadable", error=str(exc))
