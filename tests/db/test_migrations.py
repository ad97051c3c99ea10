"""The schema comes from migrations alone, and they match the models exactly."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from app.db.config import make_engine
from app.db.migrate import upgrade
from app.db.models import metadata
from app.settings import Settings


def _diff(settings: Settings) -> list[object]:
    async def run() -> list[object]:
        engine = make_engine(settings)
        try:
            async with engine.connect() as conn:

                def compare(sync_conn: object) -> list[object]:
                    context = MigrationContext.configure(sync_conn, opts={"compare_type": False})  # type: ignore[arg-type]
                    return list(compare_metadata(context, metadata))

                return await conn.run_sync(compare)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _tables(settings: Settings) -> set[str]:
    async def run() -> set[str]:
        engine = make_engine(settings)
        try:
            async with engine.connect() as conn:
                return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_migrations_build_every_table_and_match_the_models(settings: Settings) -> None:
    tables = _tables(settings)
    assert set(metadata.tables) <= tables
    assert "alembic_version" in tables
    assert _diff(settings) == []


def test_upgrade_is_repeatable(settings: Settings) -> None:
    upgrade(settings)
    assert set(metadata.tables) <= _tables(settings)
