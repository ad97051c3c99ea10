"""Bring a database to the newest schema. The only way tables are made, tests included."""

from __future__ import annotations

import asyncio
import threading

from advanced_alchemy.alembic.commands import AlembicCommands

from app.db.config import make_alchemy_config
from app.settings import Settings


def _upgrade(settings: Settings, revision: str) -> None:
    config = make_alchemy_config(settings)
    AlembicCommands(sqlalchemy_config=config).upgrade(revision=revision)


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Run Alembic migrations up to ``revision``.

    Alembic's async env calls ``asyncio.run``; when this thread already runs a loop the
    migration runs in a short-lived thread of its own instead.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        _upgrade(settings, revision)
        return
    errors: list[BaseException] = []

    def target() -> None:
        try:
            _upgrade(settings, revision)
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    worker = threading.Thread(target=target, name="migrate")
    worker.start()
    worker.join()
    if errors:
        raise errors[0]
