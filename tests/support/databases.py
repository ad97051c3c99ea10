"""Migrated test databases, quickly: migrate once per process and dialect, then copy.

Every test that wants a migrated database used to run the Alembic migrations on its own
(~70 ms of CPU on SQLite, ~170 ms on PostgreSQL, more under load). Now the first such test in a
process (one per xdist worker) migrates a *template* — still the migrations, the only way the
schema is built — and every test gets a copy of it: the SQLite file copied, on PostgreSQL
``CREATE DATABASE ... TEMPLATE`` (a block copy). Each copy then gets its own random
installation id, as a fresh migration would give it (migration 0003).

PostgreSQL's ``DROP DATABASE`` waits for a checkpoint (~30 ms on a quiet machine, 2-3 s while
other sessions load the disk), so
test databases are dropped by background threads instead of in each test's teardown; the
session waits for the last drops before it ends.
"""

from __future__ import annotations

import asyncio
import queue
import secrets
import shutil
import sqlite3
import tempfile
import threading
from pathlib import Path

import asyncpg

from app.db.migrate import upgrade
from app.settings import Settings

PG_HOST, PG_PORT = "127.0.0.1", 5432
INSTALLATION_SQL = "UPDATE installation SET installation_id = $1 WHERE id = 1"

_lock = threading.Lock()
_sqlite_template: Path | None = None
_pg_template: str | None = None


def _admin_run(sql: str, database: str = "test", *args: object) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database=database)
        try:
            await conn.execute(sql, *args)
        finally:
            await conn.close()

    asyncio.run(run())


def pg_url(name: str) -> str:
    return f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{name}"


def sqlite_path(url: str) -> Path:
    return Path(url.split("///", 1)[1])


def _settings(url: str, var_dir: Path) -> Settings:
    """Just enough settings for ``upgrade`` (which reads only the database URL)."""
    return Settings(env="development", database_url=url, var_dir=var_dir)


def sqlite_template() -> Path:
    """This process's migrated SQLite file (made on first use, removed at exit by the caller)."""
    global _sqlite_template
    with _lock:
        if _sqlite_template is None:
            folder = Path(tempfile.mkdtemp(prefix="sf-sqlite-template-"))
            path = folder / "template.db"
            upgrade(_settings(f"sqlite+aiosqlite:///{path}", folder / "var"))
            with sqlite3.connect(path) as db:  # fold any WAL back: the copy is one file
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.close()
            _sqlite_template = path
        return _sqlite_template


def copy_sqlite_migrated(url: str) -> None:
    """Put a migrated database at ``url``'s (not yet existing) file: the template, copied."""
    target = sqlite_path(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sqlite_template(), target)
    db = sqlite3.connect(target)
    try:
        with db:
            db.execute(INSTALLATION_SQL.replace("$1", "?"), (secrets.token_hex(8),))
    finally:
        db.close()


def remove_sqlite_template() -> None:
    global _sqlite_template
    with _lock:
        if _sqlite_template is not None:
            shutil.rmtree(_sqlite_template.parent, ignore_errors=True)
            _sqlite_template = None


def pg_template() -> str:
    """This process's migrated PostgreSQL template database (made on first use)."""
    global _pg_template
    with _lock:
        if _pg_template is None:
            name = "sf_tpl_" + secrets.token_hex(6)
            _admin_run(f'CREATE DATABASE "{name}"')
            folder = Path(tempfile.mkdtemp(prefix="sf-pg-template-"))
            try:
                upgrade(_settings(pg_url(name), folder / "var"))
            except BaseException:
                _admin_run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                raise
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            _pg_template = name
        return _pg_template


def create_pg_database(*, migrated: bool) -> str:
    """A fresh database: empty, or a copy of the migrated template with its own installation id."""
    name = "sf_test_" + secrets.token_hex(6)
    if not migrated:
        _admin_run(f'CREATE DATABASE "{name}"')
        return name
    _admin_run(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template()}"')
    _admin_run(INSTALLATION_SQL, name, secrets.token_hex(8))
    return name


def drop_pg_database(name: str) -> None:
    _admin_run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Dropper:
    """Drops PostgreSQL test databases in background threads.

    Each ``DROP DATABASE`` waits for a checkpoint; concurrent drops share one, so four threads
    clear a backlog about four times as fast as one (8 drops: 24 s with one thread, 5 s with
    four, on this machine under load).
    """

    THREADS = 4

    def __init__(self) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []

    def submit(self, name: str) -> None:
        if not self._threads:
            self._threads = [
                threading.Thread(target=self._run, daemon=True, name=f"pg-dropper-{n}")
                for n in range(self.THREADS)
            ]
            for thread in self._threads:
                thread.start()
        self._queue.put(name)

    def _run(self) -> None:
        while (name := self._queue.get()) is not None:
            try:
                drop_pg_database(name)
            except BaseException as exc:  # reported when the session ends
                self._errors.append(exc)

    def close(self) -> None:
        """Wait for every queued drop, then drop the template; re-raise the first failure."""
        global _pg_template
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        self._threads = []
        with _lock:
            if _pg_template is not None:
                drop_pg_database(_pg_template)
                _pg_template = None
        if self._errors:
            raise self._errors[0]
