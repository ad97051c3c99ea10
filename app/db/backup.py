"""``storefront database backup DEST``: a consistent copy of the live database.

SQLite: the online backup API (``sqlite3.Connection.backup``) copies the pages while the shop
keeps serving (a WAL database needs no pause), into a temporary file beside DEST that is checked
(``PRAGMA quick_check``) and only then renamed to DEST, so DEST is never a half-written file.

PostgreSQL: ``pg_dump --format=custom`` when it is on ``PATH`` (restore with ``pg_restore``);
otherwise :class:`BackupError` says how to run it, and the command exits non-zero: a backup
command that "succeeds" without a backup is worse than one that fails.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

PAGES_PER_STEP = 1024
"""Pages copied per step; between steps the shop's writers may commit (they are not blocked for long)."""


class BackupError(RuntimeError):
    """The backup could not be made; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Backup:
    destination: Path
    size: int
    how: str


def backup(database_url: str, destination: Path, *, overwrite: bool = False) -> Backup:
    """Copy the database at ``database_url`` to ``destination``."""
    if destination.exists() and not overwrite:
        raise BackupError(f"{destination} exists (use --overwrite to replace it)")
    if destination.is_dir():
        raise BackupError(f"{destination} is a directory; give a file name")
    destination.parent.mkdir(parents=True, exist_ok=True)
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite(url.database or "", destination)
    if url.get_backend_name() == "postgresql":
        return _postgres(database_url, destination)
    raise BackupError(f"no backup for {url.get_backend_name()} databases")


def _sqlite(path: str, destination: Path) -> Backup:
    if not path or path == ":memory:" or not Path(path).exists():
        raise BackupError(f"no SQLite database at {path or '(empty path)'}")
    partial = destination.with_name(f".{destination.name}.partial")
    partial.unlink(missing_ok=True)
    # Read-only: a backup never creates or changes the live database.
    source = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        target = sqlite3.connect(partial)
        try:
            source.backup(target, pages=PAGES_PER_STEP)
            problems = [row[0] for row in target.execute("PRAGMA quick_check")]
            # A copy of a WAL database is a WAL database; the backup is one self-contained file.
            target.execute("PRAGMA journal_mode=DELETE")
        finally:
            target.close()
    finally:
        source.close()
    if problems != ["ok"]:
        partial.unlink(missing_ok=True)
        raise BackupError(f"the copy failed its integrity check: {'; '.join(problems)}")
    os.replace(partial, destination)
    return Backup(destination, destination.stat().st_size, "SQLite online backup")


PG_DUMP_GUIDANCE = (
    "pg_dump is not on PATH. Install PostgreSQL's client tools (the same major version as the "
    'server) and run: pg_dump --format=custom --file DEST "$DATABASE_URL" '
    "(restore with pg_restore --clean --dbname ...), or take the backup on the database server."
)


def _postgres(database_url: str, destination: Path) -> Backup:
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise BackupError(PG_DUMP_GUIDANCE)
    url = make_url(database_url)
    # pg_dump speaks libpq URLs, without SQLAlchemy's "+asyncpg"; the password goes by environment.
    libpq = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    env = {**os.environ}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    partial = destination.with_name(f".{destination.name}.partial")
    done = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [pg_dump, "--format=custom", "--no-owner", "--file", str(partial), libpq],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed ({done.returncode}): {done.stderr.strip()}")
    os.replace(partial, destination)
    return Backup(destination, destination.stat().st_size, "pg_dump --format=custom")
