"""``storefront database backup DEST`` on each database: a copy that restores to the same rows."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from app.db.backup import PG_DUMP_GUIDANCE
from app.db.cli import database_group
from app.db.migrate import upgrade
from app.settings import Settings, get_settings
from tests.conftest import PG_HOST, PG_PORT, _create_pg_database, _drop_pg_database, make_settings, missing
from tests.support.cli import said
from tests.support.shop import run_sql


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _backup(settings: Settings, *args: str, **env: str) -> Result:
    return CliRunner().invoke(
        database_group,
        ["backup", *args],
        env={
            "STOREFRONT_DATABASE_URL": settings.database_url,
            "STOREFRONT_VAR_DIR": str(settings.var_dir),
            **env,
        },
    )


def _add_buyers(settings: Settings, count: int) -> None:
    for n in range(count):
        run_sql(
            settings,
            "INSERT INTO user_account (email, password_hash, is_admin, created_at, updated_at)"
            " VALUES (:email, 'x', false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            email=f"backup-{n}@example.test",
        )


def _emails(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT email FROM user_account ORDER BY email")]


def test_sqlite_backup_is_a_checked_self_contained_copy(
    sqlite_settings: Settings, tmp_path: Path, fresh_settings: None
) -> None:
    _add_buyers(sqlite_settings, 3)
    dest = tmp_path / "backups" / "shop.db"
    # A reader holds the live database open (as the running shop does) during the backup.
    live = sqlite3.connect(sqlite_settings.database_url.split("///", 1)[1])
    try:
        live.execute("BEGIN")
        live.execute("SELECT count(*) FROM user_account").fetchone()
        result = _backup(sqlite_settings, str(dest))
    finally:
        live.close()
    assert result.exit_code == 0, result.output
    assert f"{dest}:" in result.output
    assert "SQLite online backup" in result.output
    copy = sqlite3.connect(dest)
    try:
        assert _emails(copy) == [f"backup-{n}@example.test" for n in range(3)]
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert copy.execute("SELECT count(*) FROM alembic_version").fetchone()[0] == 1
    finally:
        copy.close()
    assert not list(dest.parent.glob(".*partial"))


def test_an_existing_destination_is_kept_unless_overwrite(
    sqlite_settings: Settings, tmp_path: Path, fresh_settings: None
) -> None:
    dest = tmp_path / "shop.db"
    dest.write_text("yesterday's backup")
    refused = _backup(sqlite_settings, str(dest))
    assert refused.exit_code == 1
    assert "exists (use --overwrite" in said(refused)
    assert dest.read_text() == "yesterday's backup"
    _add_buyers(sqlite_settings, 1)
    replaced = _backup(sqlite_settings, str(dest), "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    with sqlite3.connect(dest) as copy:
        assert _emails(copy) == ["backup-0@example.test"]


def test_a_missing_sqlite_file_is_an_error_not_an_empty_backup(tmp_path: Path, fresh_settings: None) -> None:
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'nowhere.db'}")
    result = _backup(settings, str(tmp_path / "copy.db"))
    assert result.exit_code == 1
    assert "no SQLite database at" in said(result)
    assert not (tmp_path / "copy.db").exists()
    assert not (tmp_path / "nowhere.db").exists()  # read-only: the backup never creates the database


@pytest.fixture
def pg_settings(database_url: str, tmp_path: Path) -> Settings:
    """A migrated PostgreSQL database (the tests below ask ``database_url`` for its postgres case only)."""
    assert database_url.startswith("postgresql")
    settings = make_settings(tmp_path, database_url)
    upgrade(settings)
    return settings


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_postgres_backup_runs_pg_dump_and_restores_into_a_fresh_database(
    pg_settings: Settings, tmp_path: Path, fresh_settings: None
) -> None:
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        missing("PostgreSQL's client tools (pg_dump, pg_restore) are not installed")
    _add_buyers(pg_settings, 2)
    dest = tmp_path / "shop.dump"
    result = _backup(pg_settings, str(dest))
    assert result.exit_code == 0, result.output
    assert "pg_dump --format=custom" in result.output
    restored = _create_pg_database()
    try:
        subprocess.run(
            [
                "pg_restore",
                "--no-owner",
                "-h",
                PG_HOST,
                "-p",
                str(PG_PORT),
                "-U",
                "postgres",
                "-d",
                restored,
                dest,
            ],
            check=True,
            capture_output=True,
        )
        copy = replace(
            pg_settings, database_url=f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{restored}"
        )
        rows = run_sql(copy, "SELECT email FROM user_account ORDER BY email")
        assert [row["email"] for row in rows] == ["backup-0@example.test", "backup-1@example.test"]
    finally:
        _drop_pg_database(restored)


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_postgres_without_pg_dump_says_how_and_fails(
    pg_settings: Settings, tmp_path: Path, fresh_settings: None
) -> None:
    result = _backup(pg_settings, str(tmp_path / "shop.dump"), PATH=str(tmp_path / "empty-bin"))
    assert result.exit_code == 1
    assert PG_DUMP_GUIDANCE[:40] in said(result)
    assert not (tmp_path / "shop.dump").exists()
