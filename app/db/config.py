"""The advanced-alchemy configuration: one engine, one session per request, Alembic migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from advanced_alchemy.extensions.litestar import (
    AlembicAsyncConfig,
    AsyncSessionConfig,
    EngineConfig,
    SQLAlchemyAsyncConfig,
)
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.db.loop_reads import READ_ONLY as READ_ONLY
from app.db.loop_reads import loop_reads_creator
from app.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


SQLITE_CONNECT_ARGS: dict[str, Any] = {"timeout": 30}


SQLITE_PRAGMAS = ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=30000")
"""Every connection to the money database, whoever opens it. ``synchronous=FULL`` makes each
commit durable across power loss (the WAL is synced at every COMMIT), so a 2xx to Stripe
never stands for a credit that a crash could take back; group commit keeps its cost low."""


WRITER_PRAGMA = "wal_autocheckpoint=0"
"""The webhook writer's connection only: it leaves checkpoints to a thread of its own
(``app.db.writer``), so a COMMIT never stalls on one."""


def install_sqlite_pragmas(engine: Engine) -> None:
    """WAL for concurrent readers, and BEGIN IMMEDIATE so two writers never deadlock on upgrade.

    A deferred SQLite transaction that reads and then writes fails at once (no busy wait)
    when another writer got in between; taking the write lock at BEGIN makes writers queue.
    Requests that only read begin deferred instead (:data:`READ_ONLY`): WAL lets them read
    while the webhook writer writes.
    Used for the async engine (on its sync core) and the webhook writer's sync engine alike:
    the one place the pragmas are set.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (savepoints need it)
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN" if READ_ONLY.get() else "BEGIN IMMEDIATE")


def sync_sqlite_engine(database_url: str) -> Engine:
    """A synchronous engine on the same file with the same pragmas (the SQLite webhook writer's)."""
    url = database_url.replace("sqlite+aiosqlite://", "sqlite+pysqlite://", 1)
    engine = create_engine(url, connect_args={**SQLITE_CONNECT_ARGS, "check_same_thread": False})
    install_sqlite_pragmas(engine)
    return engine


def make_engine(settings: Settings) -> AsyncEngine:
    """The one engine of this process; SQLite gets its pragmas, PostgreSQL a sized pool."""
    if settings.is_sqlite:
        Path(settings.database_url.split("///", 1)[-1]).parent.mkdir(parents=True, exist_ok=True)
        # Measured reason for the size: with SQLAlchemy's default (5 + 10 overflow) 32 concurrent
        # API reads made and dropped an overflow connection (a thread, a file open, the pragmas)
        # for every request past 15: 152 balance reads/s (bench/credits_bench.py --mode balance).
        # Read-only requests read on the event loop, not through aiosqlite's thread: app/db/loop_reads.py.
        engine = create_async_engine(
            settings.database_url,
            async_creator=loop_reads_creator(settings.database_url, **SQLITE_CONNECT_ARGS),
            pool_size=32,
            max_overflow=32,
        )
        install_sqlite_pragmas(engine.sync_engine)
        return engine
    return create_async_engine(
        settings.database_url, pool_size=10, max_overflow=20, pool_pre_ping=True, pool_recycle=1800
    )


def make_alchemy_config(settings: Settings, engine: AsyncEngine | None = None) -> SQLAlchemyAsyncConfig:
    """Sessions commit when the handler answers 2xx or 3xx and roll back otherwise."""
    return SQLAlchemyAsyncConfig(
        engine_instance=engine or make_engine(settings),
        before_send_handler="autocommit_include_redirects",
        session_config=AsyncSessionConfig(expire_on_commit=False),
        session_dependency_key="db_session",
        engine_config=EngineConfig(),
        create_all=False,
        alembic_config=AlembicAsyncConfig(
            script_location=str(MIGRATIONS),
            version_table_name="alembic_version",
            render_as_batch=True,
        ),
    )
